// Shared by the examples: the model files to use. Pass your own as arguments
// (`node examples/ask.mjs model.gguf mmproj.gguf`), or the examples convert and use the toy demo
// model (trained on synthetic images only: about other pictures, such as the sample radiograph, its
// answers mean nothing; it shows the calls working).
import { ensureDemoModel } from 'llava-med/demo';

export async function modelFiles(argv = process.argv.slice(2)) {
  if (argv.length >= 2) return { model: argv[0], mmproj: argv[1] };
  const { model, mmproj } = await ensureDemoModel();
  return { model, mmproj };
}
