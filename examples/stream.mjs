// Print the answer as it is generated; an AbortSignal stops it if it takes longer than 20 seconds.
//   node examples/stream.mjs [model.gguf mmproj.gguf [image]]
import { LlavaMed, isLlavaMedError } from 'llava-med';
import { DEMO_IMAGE } from 'llava-med/demo';
import { modelFiles } from './_model.mjs';

const [, , image = DEMO_IMAGE] = process.argv.slice(2);
const med = await LlavaMed.load(await modelFiles());
let chunks = 0;
try {
  for await (const chunk of med.stream(image, 'Describe the image.', { temperature: 0, maxTokens: 24, signal: AbortSignal.timeout(20_000) })) {
    process.stdout.write(chunk);
    chunks++;
  }
  process.stdout.write(`\n${JSON.stringify({ chunks })}\n`);
} catch (e) {
  if (!isLlavaMedError(e) || e.code !== 'ERR_ABORTED') throw e;
  process.stdout.write(`\n${JSON.stringify({ chunks, stopped: true })}\n`);
} finally {
  await med.dispose();
}
