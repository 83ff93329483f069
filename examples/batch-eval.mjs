// The paper's VQA protocol on a LLaVA-format test.json: answer every question (resumable), then
// score with the original metric code's rules.
//   node examples/batch-eval.mjs [model.gguf mmproj.gguf [test.json imageFolder]]
// Without a dataset it writes a two-question test set about the demo image.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LlavaMed } from 'llava-med';
import { DEMO_IMAGE } from 'llava-med/demo';
import { answerQuestions, evaluate, readAnswersFile, readTestFile } from 'llava-med/eval';
import { modelFiles } from './_model.mjs';

const argv = process.argv.slice(2);
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'llava-med-example-'));
let [, , questionFile, imageFolder] = argv;
if (!questionFile) {
  questionFile = path.join(work, 'test.json');
  imageFolder = path.dirname(DEMO_IMAGE);
  const q = (id, text, answer, type) => ({
    id, image: path.basename(DEMO_IMAGE), answer_type: type,
    conversations: [{ from: 'human', value: `<image>\n${text}` }, { from: 'gpt', value: answer }],
  });
  await fs.writeFile(questionFile, JSON.stringify([q(1, 'Is there a pneumothorax?', 'no', 'CLOSED'), q(2, 'What organ is shown?', 'lung', 'OPEN')]));
}
const med = await LlavaMed.load(await modelFiles(argv));
try {
  const answersFile = path.join(work, 'answers.jsonl');
  const run = await answerQuestions({ med, questionFile, imageFolder, answersFile, modelId: 'example', generation: { temperature: 0, maxTokens: 16 } });
  const result = evaluate(await readTestFile(questionFile), await readAnswersFile(answersFile));
  console.log(JSON.stringify({ answered: run.done, paper: result.paper }));
} finally {
  await med.dispose();
  await fs.rm(work, { recursive: true, force: true });
}
