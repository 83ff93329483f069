// A multi-turn conversation about one image: the image is encoded once and the KV cache is
// reused from turn to turn.
//   node examples/chat.mjs [model.gguf mmproj.gguf [image]]
import { LlavaMed } from 'llava-med';
import { DEMO_IMAGE } from 'llava-med/demo';
import { modelFiles } from './_model.mjs';

const [, , image = DEMO_IMAGE] = process.argv.slice(2);
const med = await LlavaMed.load(await modelFiles());
try {
  const chat = med.chat(await med.embedImage(image));
  const turns = [];
  for (const q of ['What modality is this image?', 'Which side is abnormal?']) {
    const a = await chat.ask(q, { temperature: 0, maxTokens: 16 });
    turns.push({ question: q, answer: a.text, reusedTokens: a.timings.reusedTokens });
  }
  console.log(JSON.stringify(turns));
} finally {
  await med.dispose();
}
