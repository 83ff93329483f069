import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDist, runCli } from '../cli/util.js';
import { chatComplete } from '../../lib/eval/judge/client.js';
import { compareMessages, convToStr, INSTRUCT_PROMPT, JUDGE_SYSTEM_MESSAGE, pyRepr } from '../../lib/eval/judge/prompt.js';
import { getDomain, parseScores, readChatQuestions, readReviews, runJudge, summarizeReviews, type ChatQuestion } from '../../lib/eval/judge/run.js';

type Handler = (body: { model: string; messages: { role: string; content: string }[]; temperature: number }, req: IncomingMessage, res: ServerResponse) => void;

async function server(t: { teardown: (fn: () => Promise<void>) => void }, handler: Handler): Promise<string> {
  const srv = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => handler(JSON.parse(data), req, res));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/v1`;
}
const reply = (res: ServerResponse, content: string) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
};

const question = (id: number, type: string, domain: Record<string, boolean>): ChatQuestion => ({
  question_id: id,
  text: `What is shown in image ${id}?\n<image>`,
  gpt4_answer: `Reference ${id}`,
  fig_caption: 'CT of the chest.',
  fig_label: 'Figure 2',
  in_text_mention: [{ tokens: "it's a CT", entities: [{ type: 'Modality', start_tok: 0, end_tok: 1, ok: true, none: null }] }],
  type,
  domain,
});

t.test('prompt text', async (t) => {
  t.equal(JUDGE_SYSTEM_MESSAGE[0], "'", 'the original system message starts with a stray apostrophe');
  t.match(INSTRUCT_PROMPT, /same image\.\n {2}Please rate/);
  t.match(INSTRUCT_PROMPT, /separated by a space\. In the subsequent line/);
  // Python repr of the in_text_mention list: single quotes, True/None, double quotes when the string has "'".
  t.equal(pyRepr([{ tokens: "it's", n: 1, f: 0.5, s: 'a\tb', ok: true, x: null }]), `[{'tokens': "it's", 'n': 1, 'f': 0.5, 's': 'a\\tb', 'ok': True, 'x': None}]`);
  t.equal(pyRepr(1e-5), '1e-05');
  const s = convToStr('Fig 1', 'cap', [{ a: 1 }], 'Q?', 'A1', 'A2');
  t.equal(s, `[Context]\nFigure Caption:\nFig 1: cap\n\nFigure Context:\n\t- [{'a': 1}]\n\n[Question]\nQ?\n\n[Assistant 1]\nA1\n\n[End of Assistant 1]\n\n[Assistant 2]\nA2\n\n[End of Assistant 2]\n\n[System]\n${INSTRUCT_PROMPT}\n\n`);
  t.same(compareMessages('a', 'b', 'c', 'd', 'e', 'f').map((m) => m.role), ['system', 'user']);
});

t.test('parseScores and getDomain', async (t) => {
  t.same(parseScores('8 6\nAssistant 1 is better.'), [8, 6]);
  t.same(parseScores('7.5 9'), [7.5, 9]);
  t.throws(() => parseScores('Scores: 8 and 6'), { code: 'ERR_JUDGE' });
  t.throws(() => parseScores('8  6'), { code: 'ERR_JUDGE' }, 'two spaces give three parts: the original unpacking fails');
  t.equal(getDomain({ domain: { chest_xray: false, mri: true, ct_scan: true } }), 'mri', 'first true in the fixed order');
  t.equal(getDomain({ domain: { gross: false } }), undefined);
});

t.test('judge run against a local chat-completions server, with resume', async (t) => {
  const seen: { model: string; temperature: number; user: string; auth?: string }[] = [];
  const base = await server(t, (body, req, res) => {
    seen.push({ model: body.model, temperature: body.temperature, user: body.messages[1]!.content, auth: req.headers.authorization });
    t.equal(body.messages[0]!.content, JUDGE_SYSTEM_MESSAGE);
    const n = seen.length;
    reply(res, n === 1 ? '8 4\nexplanation' : n === 2 ? '10 10\nsame' : '5 10\nmodel better');
  });
  const questions = [question(0, 'conversation', { mri: true }), question(1, 'conversation', { chest_xray: true, mri: true }), question(2, 'detailed_description', { ct_scan: true })];
  const answers = questions.map((q) => ({ question_id: q.question_id, text: `Model answer ${q.question_id}` }));
  const out = join(t.testdir(), 'reviews.jsonl');
  // First run stops after two questions (third answer list entry mismatches on purpose).
  await t.rejects(
    runJudge({ baseUrl: base, model: 'judge-1', apiKey: 'k', questions, answers: [answers[0]!, answers[1]!, { question_id: 99, text: 'x' }], out }),
    { code: 'ERR_JUDGE', message: /question_id 99/ },
  );
  t.equal(seen.length, 2);
  t.equal(seen[0]!.model, 'judge-1');
  t.equal(seen[0]!.temperature, 0);
  t.equal(seen[0]!.auth, 'Bearer k');
  // v0 mode: text[:-8] drops "\n<image>".
  t.match(seen[0]!.user, /\[Question\]\nWhat is shown in image 0\?\n\n/);
  t.match(seen[0]!.user, /Figure Context:\n\t- \[\{'tokens': "it's a CT", 'entities': \[\{'type': 'Modality', 'start_tok': 0, 'end_tok': 1, 'ok': True, 'none': None\}\]\}\]/);
  // Simulate a crash mid-line, then resume: the torn line is dropped, done questions skipped.
  await appendFile(out, '{"question_id": 2, "gpt_');
  const progress: unknown[] = [];
  const r = await runJudge({ baseUrl: base, model: 'judge-1', questions, answers, out, onProgress: (p) => progress.push(p) });
  t.same(r, { reviewed: 1, skipped: 2 });
  t.same(progress, [{ done: 3, total: 3, skipped: 2 }], 'done counts the skipped questions too (the CLI bar shows done of total)');
  const rows = await readReviews(out);
  t.same(rows.map((x) => x.question_id), [0, 1, 2]);
  t.equal(rows[0]!.ans1, 'Reference 0');
  t.notOk('gpt4_answer' in rows[0]!, 'gpt4_answer is popped into ans1, as the original does');
  const s = summarizeReviews(rows);
  // overall: s1 = 8,10,5 → 23/3; s2 = 4,10,10 → 8; relative = mean(4/8, 10/10, 10/5) × 100 = (0.5+1+2)/3 × 100.
  t.equal(s.overall!.gpt4Score, 23 / 3);
  t.equal(s.overall!.predScore, 8);
  t.equal(s.overall!.predRelativeScore, ((0.5 + 1 + 2) / 3) * 100);
  t.equal(s.overall!.dataSize, 3);
  t.same(Object.keys(s).sort(), ['chest_xray', 'conversation', 'ct_scan', 'detailed_description', 'mri', 'overall']);
  t.equal(s.chest_xray!.dataSize, 1, 'question 1 has chest_xray and mri: chest_xray comes first');
  t.equal(s.conversation!.predRelativeScore, ((0.5 + 1) / 2) * 100);
});

t.test('retries with backoff, then succeeds', async (t) => {
  let calls = 0;
  const base = await server(t, (_b, _q, res) => {
    calls++;
    if (calls <= 2) {
      res.writeHead(calls === 1 ? 503 : 429);
      res.end('busy');
    } else reply(res, '9 7\nok');
  });
  const retries: number[] = [];
  const txt = await chatComplete([{ role: 'user', content: 'x' }], { baseUrl: base, model: 'm', retryDelayMs: 5, onRetry: (i) => retries.push(i.delayMs) });
  t.equal(txt, '9 7\nok');
  t.equal(calls, 3);
  t.same(retries, [5, 10]);
});

t.test('unreachable judge and unparsable reply are ERR_JUDGE', async (t) => {
  // A port nobody listens on: connection refused every time.
  const base = await server(t, (_b, _q, res) => reply(res, 'x'));
  const dead = base.replace(/:(\d+)\//, (_m, p) => `:${Number(p) === 1 ? 2 : 1}/`);
  await t.rejects(chatComplete([{ role: 'user', content: 'x' }], { baseUrl: dead, model: 'm', maxRetries: 2, retryDelayMs: 1 }), { code: 'ERR_JUDGE', message: /after 3 attempts/ });
  const bad = await server(t, (_b, _q, res) => reply(res, 'I think Assistant 1 is better.\n8 6'));
  const out = join(t.testdir(), 'r.jsonl');
  const q = [question(0, 'conversation', { mri: true })];
  await t.rejects(runJudge({ baseUrl: bad, model: 'm', questions: q, answers: [{ text: 'a' }], out }), { code: 'ERR_JUDGE', message: /first line must be two numbers/ });
  t.equal(await readFile(out, 'utf8'), '', 'nothing written for an unusable review');
  const forbidden = await server(t, (_b, _q, res) => {
    res.writeHead(401);
    res.end('{"error":"bad key"}');
  });
  await t.rejects(chatComplete([{ role: 'user', content: 'x' }], { baseUrl: forbidden, model: 'm', retryDelayMs: 1 }), { code: 'ERR_JUDGE', message: /HTTP 401/ });
});

t.test('readChatQuestions and readReviews validate, with typed errors naming the object', async (t) => {
  const dir = t.testdir();
  const qf = join(dir, 'q.jsonl');
  await writeFile(qf, `${JSON.stringify({ question_id: 7, text: 'Q?\n<image>', gpt4_answer: 'A', type: 'conversation', extra: 1 })}\n\n`);
  const [q] = await readChatQuestions(qf);
  t.same(q, { question_id: 7, text: 'Q?\n<image>', gpt4_answer: 'A', type: 'conversation', extra: 1, fig_caption: '', fig_label: '', domain: {} }, 'defaults filled, other keys kept');
  await writeFile(qf, `${JSON.stringify({ question_id: 7, text: 'Q', gpt4_answer: 'A', type: 'conversation' })}\n${JSON.stringify({ question_id: 8, text: 'Q', type: 'conversation' })}\n`);
  await t.rejects(readChatQuestions(qf), { code: 'ERR_JUDGE', message: /q\.jsonl: object 2 is not a chat question: gpt4_answer:/ });
  await writeFile(qf, '{"question_id": 1,\n');
  await t.rejects(readChatQuestions(qf), { code: 'ERR_JUDGE', message: /q\.jsonl:1 is not valid JSON/ });
  await t.rejects(readChatQuestions(join(dir, 'none.jsonl')), { code: 'ERR_FILE_NOT_FOUND' });
  const rf = join(dir, 'r.jsonl');
  await writeFile(rf, `${JSON.stringify({ question_id: 1, question: 'Q', ans1: 'a', ans2: 'b', type: 'conversation' })}\n`);
  await t.rejects(readReviews(rf), { code: 'ERR_JUDGE', message: /object 1 is not a review line: gpt_eval:/ });
});

t.test('llava-med eval chat-judge: the CLI over the same functions, bad input one typed line', async (t) => {
  ensureDist();
  let calls = 0;
  const base = await server(t, (_b, _q, res) => reply(res, ++calls === 1 ? '8 4\nok' : '5 10\nok'));
  const dir = t.testdir();
  const questions = [question(0, 'conversation', { mri: true }), question(1, 'detailed_description', { ct_scan: true })];
  await writeFile(join(dir, 'q.jsonl'), questions.map((q) => JSON.stringify(q)).join('\n') + '\n');
  await writeFile(join(dir, 'a.jsonl'), questions.map((q) => JSON.stringify({ question_id: q.question_id, prompt: q.text, text: `A${q.question_id}`, answer_id: 'x', model_id: 'm', metadata: {} })).join('\n') + '\n');
  const args = ['eval', 'chat-judge', '--questions', join(dir, 'q.jsonl'), '--answers', join(dir, 'a.jsonl'), '--out', join(dir, 'r.jsonl'), '--base-url', base];
  const r = await runCli(args, { env: { OPENAI_API_KEY: 'k' } });
  t.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as Record<string, { gpt4Score: number; predScore: number; dataSize: number }>;
  t.same(summary.overall, { gpt4Score: 6.5, predScore: 7, predRelativeScore: ((4 / 8 + 10 / 5) / 2) * 100, dataSize: 2 });
  t.same(Object.keys(summary).sort(), ['conversation', 'ct_scan', 'detailed_description', 'mri', 'overall']);
  // Before: ChatQuestionSchema.parse threw a ZodError, printed as a JSON dump of issues.
  await writeFile(join(dir, 'q.jsonl'), `${JSON.stringify({ question_id: 0, text: 'Q' })}\n`);
  const bad = await runCli(args, { env: { OPENAI_API_KEY: 'k' } });
  t.equal(bad.code, 1);
  t.match(bad.stderr, /ERR_JUDGE: .*q\.jsonl: object 1 is not a chat question: gpt4_answer/);
  t.notMatch(bad.stderr, /\n\s+at |ZodError|"code": "invalid_type"/, 'no stack, no zod dump');
});
