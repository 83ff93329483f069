// Hand-worked values for each quirk of LLaVA-Med's metric code. Every expected value states what the
// original Python gives and why; while writing, each was also checked by running the original
// functions (glossary.py / evaluate_metrics.py / nltk 3.8 sentence_bleu) under Python 3.11.
import t from 'tap';
import { normalizeWord } from '../../lib/eval/metrics/glossary.js';
import { calculateAppearanceWithNormalization, calculateExactmatch, calculateF1score, splitSentence } from '../../lib/eval/metrics/scores.js';
import { sentenceBleu } from '../../lib/eval/metrics/bleu.js';
import { crExp, crLog } from '../../lib/eval/metrics/libm.js';
import { fsum, pyFixed, pySplit } from '../../lib/eval/metrics/pystr.js';

t.test('normalizeWord punctuation rule looks at the original string', async (t) => {
  // "-" has no neighbouring space, so it becomes a space.
  t.equal(normalizeWord('x-ray'), 'x ray');
  // " - " contains "- ", so "-" is deleted; the two spaces collapse in split().
  t.equal(normalizeWord('x - ray'), 'x ray');
  // A digit-comma-digit anywhere deletes every punctuation mark, so "x-ray" fuses to "xray".
  t.equal(normalizeWord('x-ray, 3,000'), 'xray 3000');
  t.equal(normalizeWord('3,000 cells'), '3000 cells');
  // "(ct)" has no spaced parenthesis: both become spaces → "ct".
  t.equal(normalizeWord('(ct)'), 'ct');
  // "brain?" → "?" at the end has no space after it in the original, so it becomes a space.
  t.equal(normalizeWord('brain?'), 'brain');
});

t.test('normalizeWord period rule: (?!<=\\d) is a lookahead, count=32', async (t) => {
  // "." before a digit is kept ("1.5"); the final "." is not followed by a digit and goes.
  t.equal(normalizeWord('1.5 cm.'), '1.5 cm');
  // "..1.5": the first "." is followed by "." (not a digit) and goes; the second is followed by "1" and stays.
  t.equal(normalizeWord('..1.5'), '.1.5');
  // 33 periods: re.UNICODE (32) was passed as count, so 32 are removed and one remains.
  t.equal(normalizeWord('.'.repeat(33) + 'a'), '.a');
  // A second normalization (the helpers normalize again) removes that period; the word is then "a",
  // an article, and is dropped: "".
  t.equal(normalizeWord(normalizeWord('.'.repeat(33) + 'a')), '');
  t.equal(normalizeWord('.'.repeat(32) + 'a'), '');
});

t.test('normalizeWord words: numbers, articles, contractions, case', async (t) => {
  t.equal(normalizeWord('The left lung'), 'left lung'); // lowercased, article dropped
  t.equal(normalizeWord('one, two'), '1 2'); // ", " → comma deleted, number words mapped
  t.equal(normalizeWord('None'), '0');
  t.equal(normalizeWord('dont know'), "don't know");
  t.equal(normalizeWord('Im'), 'im'); // the capitalised key "Im" can never match after lower()
  t.equal(normalizeWord(''), '');
  t.equal(normalizeWord('Yes.'), 'yes');
});

t.test('splitSentence and Python whitespace', async (t) => {
  t.same([...splitSentence('  Lung LUNG\tleft\n')], [['lung', 2], ['left', 1]]);
  t.same([...splitSentence('a b c', 2)], [['a b', 1], ['b c', 1]]);
  // \x1c is whitespace for Python str.split(), \ufeff is not (JS \s disagrees on both).
  t.same(pySplit('a\x1cb\ufeffc'), ['a', 'b\ufeffc']);
});

t.test('calculateF1score', async (t) => {
  // tp adds the candidate's count: "lung lung" vs "left lung" → tp=2, fp=0, fn=1 → P=1, R=2/3, F1=0.8.
  // True token recall would be 1/2: the repeated correct word inflates it.
  t.same(calculateF1score('lung lung', 'left lung'), { f1: 0.8, precision: 1, recall: 2 / 3 });
  // Disjoint words: tp=0 → (0,0,0).
  t.same(calculateF1score('no', 'yes'), { f1: 0, precision: 0, recall: 0 });
  // Empty strings → (0,0,0); "the" normalizes to "" so it is empty too.
  t.same(calculateF1score('', ''), { f1: 0, precision: 0, recall: 0 });
  t.same(calculateF1score('the', 'lung'), { f1: 0, precision: 0, recall: 0 });
  // "x-ray" and "x ray" normalize alike: perfect match.
  t.same(calculateF1score('x-ray', 'x ray'), { f1: 1, precision: 1, recall: 1 });
});

t.test('calculateExactmatch is ref types found / candidate tokens', async (t) => {
  t.equal(calculateExactmatch('lung lung lung', 'lung'), 1 / 3); // 1 type / 3 tokens
  t.equal(calculateExactmatch('left lung', 'right lung'), 0.5);
  t.equal(calculateExactmatch('', 'lung'), 0); // empty candidate → 0
});

t.test('sentenceBleu follows nltk 3.8 without smoothing', async (t) => {
  const tok = (s: string) => s.split(' ').filter(Boolean);
  // One word, exact match: p1=1, p2..p4 have numerator 0 → sys.float_info.min; bp=1.
  // exp(0.75*log(2.2250738585072014e-308)) = 1.821831989445342e-231, not 0.
  t.equal(sentenceBleu([tok('lung')], tok('lung')), 1.821831989445342e-231);
  // Weight 0 cancels the zero-count terms exactly: (1,0,0,0) → p1 = 1.
  t.equal(sentenceBleu([tok('lung')], tok('lung'), [1, 0, 0, 0]), 1);
  // (0,1,0,0) with unigram matches but no bigram: exp(log(min)) in glibc = 2.2250738585072626e-308 (not min itself).
  t.equal(sentenceBleu([tok('lung')], tok('lung'), [0, 1, 0, 0]), 2.2250738585072626e-308);
  // "a b c d" vs ref "a b c": p1=3/4, p2=2/3, p3=1/2, p4=0 → min; bp=1 because c>r.
  t.equal(sentenceBleu([tok('a b c')], tok('a b c d'), [1, 0, 0, 0]), 0.75);
  t.equal(sentenceBleu([tok('a b c')], tok('a b c d'), [0, 1, 0, 0]), 0.6666666666666666);
  t.equal(sentenceBleu([tok('a b c')], tok('a b c d'), [0, 0, 1, 0]), 0.5);
  t.equal(sentenceBleu([tok('a b c')], tok('a b c d')), 8.636168555094496e-78);
  // Shorter hypothesis: bp = exp(1 - 2/1) = 0.36787944117144233, p1 = 1.
  t.equal(sentenceBleu([tok('left lung')], tok('lung'), [1, 0, 0, 0]), 0.36787944117144233);
  // No unigram match → plain 0 for every weight vector; empty hypothesis → 0.
  t.equal(sentenceBleu([tok('abc')], tok('xyz')), 0);
  t.equal(sentenceBleu([tok('abc')], tok('xyz'), [0, 0, 1, 0]), 0);
  t.equal(sentenceBleu([tok('lung')], []), 0);
});

t.test('libm helpers are correctly rounded where V8 differs', async (t) => {
  // nltk on "x ray" vs "it is x ray": p = 2/4, 1/3, min, min; bp = 1; fsum of the 0.25-weighted logs,
  // then exp: CPython gives 9.53091075863908e-155 (V8's Math.exp/Math.log route gives a different last bit).
  t.equal(sentenceBleu([['x', 'ray']], ['it', 'is', 'x', 'ray']), 9.53091075863908e-155);
  t.equal(crLog(2.2250738585072014e-308), -708.3964185322641); // -1022·ln2 rounded
  t.equal(crExp(-1), 0.36787944117144233);
  t.equal(crLog(0.75), -0.2876820724517809);
  // Subnormal result rounded once at the 2^-1074 quantum: exp(log(min) + log(1/e)) ≈ 8.18558927632837e-309 (nltk's bp·p for 'left lung'|'lung').
  t.equal(0.36787944117144233 * crExp(crLog(2.2250738585072014e-308)), 8.18558927632837e-309);
});

t.test('fsum and pyFixed', async (t) => {
  t.equal(fsum([1e100, 1, -1e100]), 1); // naive summation gives 0
  t.equal(fsum([0.1, 0.2, 0.3]), 0.6); // naive gives 0.6000000000000001
  t.equal(pyFixed(0.125, 2), '0.12'); // Python rounds the exact tie to even; toFixed gives 0.13
  t.equal(pyFixed(0.375, 2), '0.38');
  t.equal(pyFixed(83.33333333333333, 2), '83.33');
  t.equal(pyFixed(99.995, 2), '100.00'); // 99.995 is stored slightly above: rounds up
});

t.test('open accuracy against candidates picks the first maximum', async (t) => {
  const cands = ['right lung', 'left lung', 'x ray', 7];
  // pred {it,is,x,ray}: "x ray" has similarity 2/2 → equals the reference → 1.
  t.equal(calculateAppearanceWithNormalization('it is x ray', 'x ray', cands), 1);
  // pred {lung}: "right lung" and "left lung" both 1/2 → the first ("right lung") wins → 0.
  t.equal(calculateAppearanceWithNormalization('lung', 'left lung', cands), 0);
  // Integers are stringified: "7" vs pred "7".
  // Integers are stringified ("7"); "seven" is mapped to "7" by manual_map → similarity 1 → 1.
  t.equal(calculateAppearanceWithNormalization('seven', '7', cands), 1);
  // An empty candidate list makes the original's max() raise; here ERR_EVAL.
  t.throws(() => calculateAppearanceWithNormalization('x', 'x', []), { code: 'ERR_EVAL' });
});
