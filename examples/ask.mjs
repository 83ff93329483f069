// One question about one image, answered in full.
//   node examples/ask.mjs [model.gguf mmproj.gguf [image [question]]]
import { LlavaMed } from 'llava-med';
import { DEMO_IMAGE } from 'llava-med/demo';
import { modelFiles } from './_model.mjs';

const [, , image = DEMO_IMAGE, question = 'Is there evidence of a pneumothorax?'] = process.argv.slice(2);
const med = await LlavaMed.load(await modelFiles());
try {
  const answer = await med.ask(image, question, { maxTokens: 32, seed: 1 });
  console.log(JSON.stringify({ text: answer.text, stopReason: answer.stopReason, generatedTokens: answer.timings.generatedTokens }));
} finally {
  await med.dispose();
}
