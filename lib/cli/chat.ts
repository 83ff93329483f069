/**
 * `llava-med chat`: an interactive multi-turn session about an image, like ollama's `run` or
 * llama-mtmd-cli's chat mode. Answers stream to stdout; Ctrl-C stops the answer being generated
 * (the turn is dropped from the history) and, pressed twice on an empty prompt, leaves; Ctrl-D or
 * /exit leave too. The conversation is a library `ChatSession`: the image is encoded once and the
 * KV cache is reused from turn to turn.
 */
import { createInterface } from 'node:readline';
import { isLlavaMedError } from '../errors.js';
import type { ImageInput } from '../image/index.js';
import type { ChatSession, GenerationOptions, LlavaMed } from '../llava-med.js';

const HELP = `commands:
  /image <path>   talk about another image (starts a new conversation)
  /reset          forget the conversation, keep the image
  /help           this list
  /exit           leave (or Ctrl-D; Ctrl-C twice on an empty prompt)
Ctrl-C while an answer is printed stops that answer.`;

export interface ChatIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream & { isTTY?: boolean };
  /** Diagnostics and the notices of the loop (errors, "stopped", the new image). */
  err: NodeJS.WritableStream;
}

export async function runChat(med: LlavaMed, firstImage: ImageInput, gen: Omit<GenerationOptions, 'signal'>, io: ChatIo): Promise<void> {
  const terminal = io.output.isTTY === true && (io.input as NodeJS.ReadStream).isTTY === true;
  const rl = createInterface({ input: io.input, output: io.output, terminal, prompt: terminal ? '>>> ' : '' });
  let image = firstImage;
  let chat: ChatSession = med.chat(image);
  let answering: AbortController | undefined;
  let interruptsAtEmptyPrompt = 0;
  const note = (m: string) => io.err.write(`${m}\n`);

  rl.on('SIGINT', () => {
    if (answering) {
      answering.abort(new Error('stopped by Ctrl-C'));
      return;
    }
    if (rl.line.length > 0 || interruptsAtEmptyPrompt === 0) {
      interruptsAtEmptyPrompt = rl.line.length > 0 ? 0 : 1;
      io.output.write(rl.line.length > 0 ? '^C\n' : '\n(press Ctrl-C again to leave, or type /exit)\n');
      rl.write(null, { ctrl: true, name: 'u' }); // clear the line being typed
      rl.prompt();
      return;
    }
    rl.close();
  });

  const newChat = async (img: ImageInput) => {
    await chat.dispose();
    image = img;
    chat = med.chat(image);
  };

  const label = (img: ImageInput) => (typeof img === 'string' ? img : 'the image');
  note(`chatting about ${label(image)}; /help for commands`);
  rl.prompt();
  try {
    for await (const raw of rl) {
      const line = raw.trim();
      interruptsAtEmptyPrompt = 0;
      if (line === '') {
        rl.prompt();
        continue;
      }
      if (line.startsWith('/')) {
        const [cmd, ...rest] = line.split(/\s+/);
        const arg = line.slice(cmd.length).trim();
        if (cmd === '/exit' || cmd === '/bye' || cmd === '/quit') break;
        else if (cmd === '/help') note(HELP);
        else if (cmd === '/reset') {
          await newChat(image);
          note('conversation reset');
        } else if (cmd === '/image') {
          if (rest.length === 0) note('usage: /image <path>');
          else {
            await newChat(arg);
            note(`now talking about ${arg}`);
          }
        } else note(`unknown command ${cmd}; /help lists them`);
        rl.prompt();
        continue;
      }
      answering = new AbortController();
      try {
        for await (const chunk of chat.stream(line, { ...gen, signal: answering.signal })) io.output.write(chunk);
        io.output.write('\n');
      } catch (e) {
        io.output.write('\n');
        if (isLlavaMedError(e, 'ERR_ABORTED')) note('(stopped; this turn is not kept)');
        else if (isLlavaMedError(e)) note(`error: ${e.code}: ${e.message}`);
        else throw e;
      } finally {
        answering = undefined;
      }
      rl.prompt();
    }
  } finally {
    rl.close();
    await chat.dispose();
  }
}
