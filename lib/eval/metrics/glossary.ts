/**
 * `normalize_word` from LLaVA-Med's llava/eval/eval_metrics/glossary.py (v1.0.0), reproduced
 * quirk for quirk, because every reported metric is computed on its output.
 * The tables are the VQA-v2 evaluation tables (vqaEval.py) as copied into glossary.py.
 */
import { pyLower, pySplit } from './pystr.js';

/** glossary.contractions, verbatim (incl. the capitalised keys, which can never match after lower()). */
export const CONTRACTIONS: Readonly<Record<string, string>> = Object.freeze({
  aint: "ain't", arent: "aren't", cant: "can't", couldve: "could've", couldnt: "couldn't",
  "couldn'tve": "couldn't've", "couldnt've": "couldn't've", didnt: "didn't", doesnt: "doesn't",
  dont: "don't", hadnt: "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", hasnt: "hasn't",
  havent: "haven't", hed: "he'd", "hed've": "he'd've", "he'dve": "he'd've", hes: "he's", howd: "how'd",
  howll: "how'll", hows: "how's", "Id've": "I'd've", "I'dve": "I'd've", Im: "I'm", Ive: "I've",
  isnt: "isn't", itd: "it'd", "itd've": "it'd've", "it'dve": "it'd've", itll: "it'll", "let's": "let's",
  maam: "ma'am", mightnt: "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
  mightve: "might've", mustnt: "mustn't", mustve: "must've", neednt: "needn't", notve: "not've",
  oclock: "o'clock", oughtnt: "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
  "'ow'sat": "'ow's'at", shant: "shan't", "shed've": "she'd've", "she'dve": "she'd've",
  "she's": "she's", shouldve: "should've", shouldnt: "shouldn't", "shouldnt've": "shouldn't've",
  "shouldn'tve": "shouldn't've", "somebody'd": 'somebodyd', "somebodyd've": "somebody'd've",
  "somebody'dve": "somebody'd've", somebodyll: "somebody'll", somebodys: "somebody's",
  someoned: "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
  someonell: "someone'll", someones: "someone's", somethingd: "something'd",
  "somethingd've": "something'd've", "something'dve": "something'd've", somethingll: "something'll",
  thats: "that's", thered: "there'd", "thered've": "there'd've", "there'dve": "there'd've",
  therere: "there're", theres: "there's", theyd: "they'd", "theyd've": "they'd've",
  "they'dve": "they'd've", theyll: "they'll", theyre: "they're", theyve: "they've", twas: "'twas",
  wasnt: "wasn't", "wed've": "we'd've", "we'dve": "we'd've", weve: "we've", werent: "weren't",
  whatll: "what'll", whatre: "what're", whats: "what's", whatve: "what've", whens: "when's",
  whered: "where'd", wheres: "where's", whereve: "where've", whod: "who'd", "whod've": "who'd've",
  "who'dve": "who'd've", wholl: "who'll", whos: "who's", whove: "who've", whyll: "why'll",
  whyre: "why're", whys: "why's", wont: "won't", wouldve: "would've", wouldnt: "wouldn't",
  "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", yall: "y'all", "yall'll": "y'all'll",
  "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
  "y'all'dve": "y'all'd've", youd: "you'd", "youd've": "you'd've", "you'dve": "you'd've",
  youll: "you'll", youre: "you're", youve: "you've",
});

/** glossary.manual_map. (`setdefault` in the original also inserts word→word: no visible effect.) */
export const MANUAL_MAP: Readonly<Record<string, string>> = Object.freeze({
  none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5',
  six: '6', seven: '7', eight: '8', nine: '9', ten: '10',
});

export const ARTICLES: readonly string[] = Object.freeze(['a', 'an', 'the']);

/** glossary.punct, in the original order. */
export const PUNCT: readonly string[] = Object.freeze([
  ';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!',
]);

/**
 * comma_strip = re.compile("(\d)(\,)(\d)"). Python 3 `\d` on str means any Unicode decimal
 * digit (category Nd), hence \p{Nd}.
 */
const COMMA_STRIP = /(\p{Nd})(,)(\p{Nd})/u;

/**
 * period_strip = re.compile("(?!<=\d)(\.)(?!\d)"). The author meant a lookbehind `(?<!\d)` but
 * wrote `(?!<=\d)`: a negative LOOKAHEAD for the literal text "<=" plus a digit. Where the next
 * character is the "." being matched that lookahead always succeeds, so the pattern is just
 * "a period not followed by a digit" — "1.5" keeps its period, "end." loses it.
 */
const PERIOD_STRIP = /(?!<=\p{Nd})(\.)(?!\p{Nd})/gu;

/**
 * `period_strip.sub("", _token, re.UNICODE)`: the third positional argument of Pattern.sub is
 * `count`, and re.UNICODE == 32, so only the first 32 matches are removed. Lookaheads see the
 * original string (re.sub does not rescan its own output), exactly like String.replace.
 */
const PERIOD_SUB_COUNT = 32;

function pyReplaceAll(s: string, p: string, r: string): string {
  return s.split(p).join(r);
}

/** glossary.normalize_word, exactly. */
export function normalizeWord(token: string): string {
  let t = token;
  // The conditions look at the ORIGINAL string each time; the edits accumulate in `t`. A digit-comma-digit
  // anywhere switches every punctuation mark to deletion.
  const hasDigitComma = COMMA_STRIP.test(token);
  for (const p of PUNCT) {
    if (token.includes(p + ' ') || token.includes(' ' + p) || hasDigitComma) t = pyReplaceAll(t, p, '');
    else t = pyReplaceAll(t, p, ' ');
  }
  let removed = 0;
  t = t.replace(PERIOD_STRIP, (m) => (removed++ < PERIOD_SUB_COUNT ? '' : m));

  const words: string[] = [];
  for (let w of pySplit(pyLower(t))) {
    w = Object.hasOwn(MANUAL_MAP, w) ? MANUAL_MAP[w]! : w;
    if (!ARTICLES.includes(w)) words.push(w);
  }
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (Object.hasOwn(CONTRACTIONS, w)) words[i] = CONTRACTIONS[w]!;
  }
  return pyReplaceAll(words.join(' '), ',', '');
}
