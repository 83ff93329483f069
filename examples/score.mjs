// Rank candidate answers by the model's log-likelihood (closed-set VQA, as yes/no questions are
// often evaluated).
//   node examples/score.mjs [model.gguf mmproj.gguf [image]]
import { LlavaMed } from 'llava-med';
import { DEMO_IMAGE } from 'llava-med/demo';
import { modelFiles } from './_model.mjs';

const [, , image = DEMO_IMAGE] = process.argv.slice(2);
const med = await LlavaMed.load(await modelFiles());
try {
  const scores = await med.score(image, 'Is there a pneumothorax?', ['yes', 'no']);
  const best = [...scores].sort((a, b) => b.logProb - a.logProb)[0];
  console.log(JSON.stringify({ scores, best: best.candidate }));
} finally {
  await med.dispose();
}
