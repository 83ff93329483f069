// Generation defaults, answer post-processing and answers-file fields of the original scripts.
import t from 'tap';
import { GENERATION_DEFAULTS, postprocessV0, postprocessV15, MULTIMODAL_SYSTEM, answersFilePrompt } from '../../lib/prompt/index.js';

t.test('defaults', async (t) => {
  t.match(GENERATION_DEFAULTS.v0, { temperature: 0.7, topK: 50, topP: 1, maxTokens: 1024, stop: ['###'] });
  t.match(GENERATION_DEFAULTS['v1.5'], { temperature: 0, maxTokens: 1024, stop: [], stopAtEos: true });
  t.ok(Object.isFrozen(GENERATION_DEFAULTS.v0), 'frozen: callers copy, they cannot change the defaults');
});

t.test('v0 post-processing: cut at the first ###, strip, keep "Assistant:"', async (t) => {
  t.equal(postprocessV0('Assistant: A chest X-ray. ###Human: next'), 'Assistant: A chest X-ray.');
  t.equal(postprocessV0('  no separator\n'), 'no separator');
  t.equal(postprocessV0('###'), '');
  t.equal(postprocessV0(' a #### b'), 'a');
});

t.test('v1.5 post-processing: strip only', async (t) => {
  t.equal(postprocessV15('  Yes, there is.\n'), 'Yes, there is.');
  t.equal(postprocessV15('a ### b'), 'a ### b');
});

t.test('answers-file prompt and the multimodal system prompt', async (t) => {
  t.equal(answersFilePrompt('<image>\nIs there a fracture? '), 'Is there a fracture?\n<image>');
  t.equal(answersFilePrompt('Is there a fracture?', false), 'Is there a fracture?');
  t.equal(
    MULTIMODAL_SYSTEM,
    'You are LLaVA-Med, a large language and vision assistant trained by a group of researchers at Microsoft, based on the general domain LLaVA architecture.You are able to understand the visual content that the user provides, and assist the user with a variety of medical and clinical tasks using natural language.Follow the instructions carefully and explain your answers in detail.',
  );
});
