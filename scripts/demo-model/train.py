#!/usr/bin/env python3
"""Trains the demo model -- a tiny LLaVA-Med v0 (CLIP ViT 224/14 -> 256 image tokens, select layer -2,
CLS dropped, one Linear projector, LLaMA-style LM with the 4 added tokens) -- on the synthetic task of
task.py, and releases it as LLaVA-Med v0 was released: a "base" LM folder, a delta folder (two torch .bin
shards + index, config, tokenizer files as the original delta has them) and a CLIP vision folder.

Deterministic: seeded, one thread, fixed data order (same torch build + BLAS -> same weights).

The prompt is exactly the v0 `simple` one the converter/engine build (lib/prompt/v0.ts, model_vqa_med.py):
  [</s>] + sp(rstrip(SYSTEM###Human: Hi!###Assistant: Hi there!  How can I help you today?\n###Human: {q}))
  + [<im_start>] + 256 image features + [<im_end>] + sp("###")
and the model learns to continue with sp("Assistant: {answer}###") (v0 answers keep the "Assistant:" label;
generation stops at "###").

After training it folds base + delta exactly as apply_delta.py (fp16 operands, fp16 sum), answers the test
split greedily with those weights and writes reference/answers-pytorch.jsonl (the original's answers
format) and reference/greedy.json (prompt and answer token ids per question).

Usage: python3 scripts/demo-model/train.py OUT_DIR --recipe   (what made assets/demo: every stage of RECIPE)
       python3 scripts/demo-model/train.py OUT_DIR [--resume] [--steps N] [...]   (one stage)
"""
import argparse
import json
import math
import os
import random
import sys
import time

import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import task  # noqa: E402

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the human's questions.")
PREAMBLE = SYSTEM + '###' + 'Human: Hi!###' + 'Assistant: Hi there!  How can I help you today?\n###' + 'Human: '
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

DIMS = dict(hidden=64, layers=2, heads=2, intermediate=256, clip_hidden=64, clip_layers=3, clip_heads=2,
            clip_intermediate=256, image_size=224, patch_size=14)
TRAIN_SEED, TEST_SEED, TEST_IMAGES, TEST_PER_IMAGE, VAL_SEED = 1, 7, 40, 2, 3
VISION_IMAGE_OFFSET = 10_000_000  # the tower's pre-training images: none of them is an LM training image
MAX_NEW = 12


# ----------------------------------------------------------------------------------------------- preprocessing
def preprocess(img):
    """CLIPImageProcessor (openai/clip-vit-large-patch14): shortest edge to 224 (Pillow BICUBIC), centre crop 224,
    rescale 1/255, normalise -- as transformers 4.28 did it."""
    w, h = img.size
    s = DIMS['image_size']
    if w <= h:
        nw, nh = s, int(s * h / w)
    else:
        nw, nh = int(s * w / h), s
    img = img.convert('RGB').resize((nw, nh), Image.BICUBIC)
    top, left = (nh - s) // 2, (nw - s) // 2
    img = img.crop((left, top, left + s, top + s))
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).reshape(s, s, 3).permute(2, 0, 1).float() / 255.0
    return (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


# ----------------------------------------------------------------------------------------------- model
class ClipLayer(nn.Module):
    def __init__(s, c, heads, inter):
        super().__init__()
        s.heads = heads
        s.q_proj, s.k_proj, s.v_proj, s.out_proj = (nn.Linear(c, c) for _ in range(4))
        s.layer_norm1, s.layer_norm2 = nn.LayerNorm(c, eps=1e-5), nn.LayerNorm(c, eps=1e-5)
        s.fc1, s.fc2 = nn.Linear(c, inter), nn.Linear(inter, c)

    def forward(s, x):
        b, n, c = x.shape
        hd = c // s.heads
        h = s.layer_norm1(x)
        q = s.q_proj(h).view(b, n, s.heads, hd).transpose(1, 2) * hd ** -0.5
        k = s.k_proj(h).view(b, n, s.heads, hd).transpose(1, 2)
        v = s.v_proj(h).view(b, n, s.heads, hd).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        x = x + s.out_proj(a.transpose(1, 2).reshape(b, n, c))
        h = s.fc1(s.layer_norm2(x))
        return x + s.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu


class Clip(nn.Module):
    def __init__(s, d):
        super().__init__()
        c, p = d['clip_hidden'], d['patch_size']
        n = (d['image_size'] // p) ** 2 + 1
        s.class_embedding = nn.Parameter(torch.randn(c) * 0.02)
        s.patch_embedding = nn.Conv2d(3, c, p, p, bias=False)
        s.position_embedding = nn.Parameter(torch.randn(n, c) * 0.02)
        s.pre_layrnorm = nn.LayerNorm(c, eps=1e-5)
        s.layers = nn.ModuleList(ClipLayer(c, d['clip_heads'], d['clip_intermediate']) for _ in range(d['clip_layers']))
        s.post_layernorm = nn.LayerNorm(c, eps=1e-5)

    def features(s, px):
        """hidden_states[-2][:, 1:]: the input of the last layer, CLS dropped (the last layer never runs)."""
        x = s.patch_embedding(px).flatten(2).transpose(1, 2)
        x = torch.cat([s.class_embedding.expand(x.shape[0], 1, -1), x], 1) + s.position_embedding
        x = s.pre_layrnorm(x)
        for layer in s.layers[:-1]:
            x = layer(x)
        return x[:, 1:]


class RMSNorm(nn.Module):
    def __init__(s, n, eps=1e-6):
        super().__init__()
        s.weight, s.eps = nn.Parameter(torch.ones(n)), eps

    def forward(s, x):
        return s.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps))


def rope(x, pos, hd):
    """HF LLaMA rotary (rotate_half over the two halves of each head), theta 10000. x: [b, h, t, hd], pos: [b, t]."""
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    f = pos.float()[..., None] * inv  # b t hd/2
    emb = torch.cat([f, f], -1)[:, None]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * emb.cos() + torch.cat([-x2, x1], -1) * emb.sin()


class LlamaLayer(nn.Module):
    def __init__(s, h, heads, inter):
        super().__init__()
        s.heads = heads
        s.q_proj, s.k_proj, s.v_proj, s.o_proj = (nn.Linear(h, h, bias=False) for _ in range(4))
        s.gate_proj, s.up_proj = nn.Linear(h, inter, bias=False), nn.Linear(h, inter, bias=False)
        s.down_proj = nn.Linear(inter, h, bias=False)
        s.input_layernorm, s.post_attention_layernorm = RMSNorm(h), RMSNorm(h)

    def forward(s, x, pos, valid, qidx=None):
        """x: [b, t, h]; pos: [b, t]; valid: [b, t] bool. qidx ([b, m]): only compute these query rows."""
        b, t, h = x.shape
        hd = h // s.heads
        n = s.input_layernorm(x)
        k = rope(s.k_proj(n).view(b, t, s.heads, hd).transpose(1, 2), pos, hd)
        v = s.v_proj(n).view(b, t, s.heads, hd).transpose(1, 2)
        if qidx is None:
            xq, nq, qpos = x, n, pos
        else:
            g = qidx[..., None].expand(-1, -1, h)
            xq, nq, qpos = x.gather(1, g), n.gather(1, g), pos.gather(1, qidx)
        m = nq.shape[1]
        q = rope(s.q_proj(nq).view(b, m, s.heads, hd).transpose(1, 2), qpos, hd)
        mask = (qpos[:, :, None] >= pos[:, None, :]) & valid[:, None, :]
        sc = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        sc = sc.masked_fill(~mask[:, None], float('-inf'))
        a = torch.softmax(sc, -1) @ v
        xq = xq + s.o_proj(a.transpose(1, 2).reshape(b, m, h))
        n2 = s.post_attention_layernorm(xq)
        return xq + s.down_proj(F.silu(s.gate_proj(n2)) * s.up_proj(n2))


class Llava(nn.Module):
    def __init__(s, d, vocab):
        super().__init__()
        s.d = d
        s.embed_tokens = nn.Embedding(vocab, d['hidden'])
        s.layers = nn.ModuleList(LlamaLayer(d['hidden'], d['heads'], d['intermediate']) for _ in range(d['layers']))
        s.norm = RMSNorm(d['hidden'])
        s.lm_head = nn.Linear(d['hidden'], vocab, bias=False)
        s.mm_projector = nn.Linear(d['clip_hidden'], d['hidden'])
        s.vision = Clip(d)

    def embed(s, ids, img_pos, feats):
        """ids [b, t] with 256 placeholder ids after each <im_start>; img_pos [b]: index of the first image token."""
        x = s.embed_tokens(ids)
        proj = s.mm_projector(feats)  # b 256 h
        n = proj.shape[1]
        idx = img_pos[:, None] + torch.arange(n)[None]
        return x.scatter(1, idx[..., None].expand(-1, -1, x.shape[-1]), proj)

    def forward(s, ids, valid, img_pos, feats, qidx=None):
        b, t = ids.shape
        pos = torch.arange(t)[None].expand(b, -1)
        x = s.embed(ids, img_pos, feats)
        for i, layer in enumerate(s.layers):
            last = i == len(s.layers) - 1
            x = layer(x, pos, valid, qidx if last else None)
        return s.lm_head(s.norm(x))


# ----------------------------------------------------------------------------------------------- vision pre-training
def sincos_2d(c, n):
    """2-D sin-cos position table ([1 + n*n, c], the CLS row zero): the tower starts knowing where each patch is,
    as a pre-trained CLIP does (its learned table is smooth in x and y); a 0.02-scale random table leaves the
    side of a nodule unlearnable within this budget."""
    q = c // 4
    omega = 1.0 / (100 ** (torch.arange(q).float() / q))
    y, x = torch.meshgrid(torch.arange(n).float(), torch.arange(n).float(), indexing='ij')
    fy, fx = y.flatten()[:, None] * omega, x.flatten()[:, None] * omega
    return torch.cat([torch.zeros(1, c), torch.cat([fx.sin(), fx.cos(), fy.sin(), fy.cos()], 1)], 0)


PATCH_LABELS = ['none', 'nodule-right', 'nodule-left', 'lesion-bright', 'lesion-dark', 'cell-green', 'cell-red',
                'nucleus-purple', 'nucleus-blue', 'nucleus-brown']


def patch_labels(ev):
    """What each of the 16 x 16 patches shows after preprocess() (the blob covering most of it, if >= 20 %)."""
    s, p = DIMS['image_size'], DIMS['patch_size']
    g = s / task.H  # shortest edge (the height) to 224, then the centre crop of the width
    left = (int(s * task.W / task.H) - s) // 2
    n = s // p
    sub = (torch.arange(7).float() + 0.5) / 7 * p
    cy = (torch.arange(n).float() * p)[:, None, None, None] + sub[None, None, :, None]
    cx = (torch.arange(n).float() * p)[None, :, None, None] + sub[None, None, None, :]
    lab, best = torch.zeros(n, n, dtype=torch.long), torch.zeros(n, n)
    for x, y, r, name in ev:
        xc, yc, rc = x * g - left, y * g, r * g
        cov = (((cx - xc) ** 2 + (cy - yc) ** 2) <= rc * rc).float().mean((-1, -2))
        m = (cov > best) & (cov >= 0.2)
        lab[m] = PATCH_LABELS.index(name)
        best = torch.maximum(best, cov)
    return lab.flatten()


def pretrain_vision(a, vision):
    """The tower's own pre-training (LLaVA-Med's CLIP came pre-trained; then LLaVA training froze it): every
    output token (hidden_states[-2], CLS dropped -- exactly what the projector sees) learns, through one linear
    head per question, every answer about its whole image, and through one more head what its own patch shows.
    So the evidence of a nodule a few patches wide reaches all 256 tokens, and the LM can read it with any attention."""
    answers = {}
    for i in range(400):
        for q, ans, _, _ in task.make_image(TRAIN_SEED, VISION_IMAGE_OFFSET + i)[2]:
            answers.setdefault(q, set()).add(ans)
    answers = {q: sorted(v) for q, v in sorted(answers.items())}
    c = DIMS['clip_hidden']
    heads = nn.ModuleDict({str(i): nn.Linear(c, len(v)) for i, v in enumerate(answers.values())})
    head_of = {q: str(i) for i, q in enumerate(answers)}
    dense = nn.Linear(c, len(PATCH_LABELS))
    with torch.no_grad():
        vision.position_embedding.copy_(sincos_2d(c, DIMS['image_size'] // DIMS['patch_size']))
    params = list(vision.parameters()) + list(heads.parameters()) + list(dense.parameters())
    opt = torch.optim.AdamW(params, lr=a.vision_lr, weight_decay=0.0, betas=(0.9, 0.98))
    t0, c0 = time.time(), time.process_time()
    index = VISION_IMAGE_OFFSET
    for step in range(a.vision_steps):
        lr = a.vision_lr * min(1.0, (step + 1) / 30) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.vision_steps)))
        for g in opt.param_groups:
            g['lr'] = lr
        pxs, labels, dense_labels = [], [], []
        for _ in range(a.vision_images_per_step):
            _, img, qa, ev = task.make_image(TRAIN_SEED, index, evidence=True)
            index += 1
            pxs.append(preprocess(img))
            labels.append([(head_of[q], answers[q].index(ans)) for q, ans, _, _ in qa])
            dense_labels.append(patch_labels(ev))
        feats = vision.features(torch.stack(pxs))
        loss, n = 0, 0
        for j, qa in enumerate(labels):
            for h, k in qa:
                logits = heads[h](feats[j])
                loss = loss + F.cross_entropy(logits, torch.full((logits.shape[0],), k))
                n += 1
        loss = loss / n + F.cross_entropy(dense(feats).reshape(-1, len(PATCH_LABELS)), torch.stack(dense_labels).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == a.vision_steps - 1:
            print(f'vision step {step} loss {loss.item():.4f} lr {lr:.2e} {time.time() - t0:.0f}s cpu {time.process_time() - c0:.0f}s', flush=True)
    return {'steps': a.vision_steps, 'images': index - VISION_IMAGE_OFFSET, 'seconds': round(time.time() - t0),
            'cpu_seconds': round(time.process_time() - c0), 'final_loss': loss.item()}


# ----------------------------------------------------------------------------------------------- tokenizer/data
def train_tokenizer(out_dir, corpus_lines, vocab_size):
    path = os.path.join(out_dir, 'sp-corpus.txt')
    with open(path, 'w') as f:
        for line in corpus_lines:
            f.write(line + '\n')
    cwd = os.getcwd()
    os.chdir(out_dir)  # relative paths: the model file records them, and it must not depend on OUT_DIR
    try:
        _train_sp(vocab_size)
    finally:
        os.chdir(cwd)
    os.remove(path)
    return spm.SentencePieceProcessor(model_file=os.path.join(out_dir, 'sp.model'))


def _train_sp(vocab_size):
    spm.SentencePieceTrainer.train(
        input='sp-corpus.txt', model_prefix='sp', model_type='bpe', vocab_size=vocab_size,
        byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        normalization_rule_name='identity', remove_extra_whitespaces=False, add_dummy_prefix=True,
        split_digits=True, allow_whitespace_only_pieces=True, num_threads=1, minloglevel=2,
        max_sentence_length=4096, shuffle_input_sentence=False, seed_sentencepiece_size=100000,
    )


class Tok:
    def __init__(s, sp):
        s.sp = sp
        s.v = sp.get_piece_size()
        s.pad, s.patch, s.start, s.end = s.v, s.v + 1, s.v + 2, s.v + 3
        s.bos = 2  # "</s>": the delta's special_tokens_map.json makes it the BOS the original prepended
        s.after = sp.encode('###')

    def prompt(s, question):
        left = (PREAMBLE + question.replace('<image>', '').strip()).rstrip()
        before = [s.bos] + s.sp.encode(left) + [s.start]
        return before, [s.end] + s.after

    def decode(s, ids):
        return s.sp.decode([i for i in ids if i < s.v])

    def answer(s, a):
        return s.sp.encode(f'Assistant: {a}###')


def batch(tok, items, n_img=256):
    """items: [(question, answer_ids or None, image_index)] -> ids, valid, img_pos, target positions/ids."""
    seqs, img_pos, tgt = [], [], []
    for q, ans, _ in items:
        before, after = tok.prompt(q)
        ids = before + [tok.patch] * n_img + after
        img_pos.append(len(before))
        if ans is not None:
            tgt.append((len(ids) - 1, ans))
            ids = ids + ans[:-1]
        seqs.append(ids)
    t = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), t), tok.pad, dtype=torch.long)
    valid = torch.zeros(len(seqs), t, dtype=torch.bool)
    for i, x in enumerate(seqs):
        ids[i, : len(x)] = torch.tensor(x)
        valid[i, : len(x)] = True
    return ids, valid, torch.tensor(img_pos), tgt


# ----------------------------------------------------------------------------------------------- release
def half_sd(sd):
    return {k: v.detach().to(torch.float16).contiguous().clone() for k, v in sd.items()}


def lm_state(model):
    sd = {'model.embed_tokens.weight': model.embed_tokens.weight}
    for i, l in enumerate(model.layers):
        p = f'model.layers.{i}.'
        for n in ['q_proj', 'k_proj', 'v_proj', 'o_proj']:
            sd[f'{p}self_attn.{n}.weight'] = getattr(l, n).weight
        for n in ['gate_proj', 'up_proj', 'down_proj']:
            sd[f'{p}mlp.{n}.weight'] = getattr(l, n).weight
        sd[f'{p}input_layernorm.weight'] = l.input_layernorm.weight
        sd[f'{p}post_attention_layernorm.weight'] = l.post_attention_layernorm.weight
    sd['model.norm.weight'] = model.norm.weight
    sd['lm_head.weight'] = model.lm_head.weight
    return sd


def clip_state(v):
    sd = {'vision_model.embeddings.class_embedding': v.class_embedding,
          'vision_model.embeddings.patch_embedding.weight': v.patch_embedding.weight,
          'vision_model.embeddings.position_embedding.weight': v.position_embedding,
          'vision_model.pre_layrnorm.weight': v.pre_layrnorm.weight, 'vision_model.pre_layrnorm.bias': v.pre_layrnorm.bias}
    for i, l in enumerate(v.layers):
        p = f'vision_model.encoder.layers.{i}.'
        for n in ['q_proj', 'k_proj', 'v_proj', 'out_proj']:
            sd[f'{p}self_attn.{n}.weight'] = getattr(l, n).weight
            sd[f'{p}self_attn.{n}.bias'] = getattr(l, n).bias
        for n in ['layer_norm1', 'layer_norm2', 'fc1', 'fc2']:
            key = f'{p}mlp.{n}' if n.startswith('fc') else f'{p}{n}'
            sd[f'{key}.weight'] = getattr(l, n).weight
            sd[f'{key}.bias'] = getattr(l, n).bias
    sd['vision_model.post_layernorm.weight'] = v.post_layernorm.weight
    sd['vision_model.post_layernorm.bias'] = v.post_layernorm.bias
    return sd


def jdump(path, v):
    with open(path, 'w') as f:
        json.dump(v, f, indent=2)
        f.write('\n')


def release(out, model, base_lm, tok, sp_path):
    """Writes base/, delta/, vision/ in the layouts of the real release (see lib/demo/synthetic-v0.ts)."""
    d = DIMS
    v = tok.v
    for sub in ['base', 'delta', 'vision']:
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    llama_cfg = {
        'architectures': ['LlamaForCausalLM'], 'bos_token_id': 1, 'eos_token_id': 2, 'hidden_act': 'silu',
        'hidden_size': d['hidden'], 'initializer_range': 0.02, 'intermediate_size': d['intermediate'],
        'max_position_embeddings': 2048, 'model_type': 'llama', 'num_attention_heads': d['heads'],
        'num_hidden_layers': d['layers'], 'pad_token_id': 0, 'rms_norm_eps': 1e-6, 'tie_word_embeddings': False,
        'torch_dtype': 'float16', 'transformers_version': '4.28.0.dev0', 'use_cache': True, 'vocab_size': v,
    }
    sp_bytes = open(sp_path, 'rb').read()
    # base: an original-LLaMA-layout checkpoint (the LM before training: the "pretrained" model)
    base16 = half_sd(base_lm)
    torch.save(base16, os.path.join(out, 'base', 'pytorch_model.bin'))
    jdump(os.path.join(out, 'base', 'config.json'), llama_cfg)
    jdump(os.path.join(out, 'base', 'special_tokens_map.json'), {})
    jdump(os.path.join(out, 'base', 'tokenizer_config.json'), {'bos_token': '', 'eos_token': '', 'model_max_length': 1e30,
                                                              'tokenizer_class': 'LlamaTokenizer', 'unk_token': ''})
    open(os.path.join(out, 'base', 'tokenizer.model'), 'wb').write(sp_bytes)
    # delta: trained - base on the base block (fp16), absolute rows for the 4 added tokens, absolute projector
    final = half_sd(lm_state(model))
    delta = {}
    for k, w in final.items():
        b = base16[k]
        dw = w.float().clone()
        if list(b.shape) == list(w.shape):
            dw = w.float() - b.float()
        else:
            dw[: b.shape[0], : b.shape[1]] = w.float()[: b.shape[0], : b.shape[1]] - b.float()
        delta[k] = dw.to(torch.float16).contiguous()
    delta['model.mm_projector.weight'] = model.mm_projector.weight.detach().to(torch.float16).contiguous().clone()
    delta['model.mm_projector.bias'] = model.mm_projector.bias.detach().to(torch.float16).contiguous().clone()
    names = list(delta)
    half = len(names) // 2
    shards = [names[:half], names[half:]]
    index = {'metadata': {'total_size': sum(t.numel() * 2 for t in delta.values())}, 'weight_map': {}}
    for i, ns in enumerate(shards):
        fn = f'pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin'
        torch.save({n: delta[n] for n in ns}, os.path.join(out, 'delta', fn))
        for n in ns:
            index['weight_map'][n] = fn
    jdump(os.path.join(out, 'delta', 'pytorch_model.bin.index.json'), index)
    cfg = dict(llama_cfg)
    del cfg['max_position_embeddings']
    cfg.update({
        '_name_or_path': 'llava-med-demo/llava_med_demo_synthetic', 'architectures': ['LlavaLlamaForCausalLM'],
        'model_type': 'llava', 'bos_token_id': 0, 'eos_token_id': 1, 'pad_token_id': -1, 'max_sequence_length': 2048,
        'mm_hidden_size': d['clip_hidden'], 'mm_use_im_start_end': True, 'mm_vision_select_layer': -2,
        'mm_vision_tower': 'openai/clip-vit-large-patch14', 'tune_mm_mlp_adapter': False, 'use_mm_proj': True,
        'vocab_size': v + 4,
    })
    jdump(os.path.join(out, 'delta', 'config.json'), cfg)
    jdump(os.path.join(out, 'delta', 'generation_config.json'), {'_from_model_config': True, 'bos_token_id': 0, 'eos_token_id': 1,
                                                                'pad_token_id': 0, 'transformers_version': '4.28.0.dev0'})
    jdump(os.path.join(out, 'delta', 'added_tokens.json'), {'[PAD]': v, '<im_patch>': v + 1, '<im_start>': v + 2, '<im_end>': v + 3})
    jdump(os.path.join(out, 'delta', 'special_tokens_map.json'), {'bos_token': '</s>', 'eos_token': '</s>', 'pad_token': '[PAD]', 'unk_token': '<unk>'})
    jdump(os.path.join(out, 'delta', 'tokenizer_config.json'), {'bos_token': '<s>', 'eos_token': '</s>', 'model_max_length': 2048, 'pad_token': None,
                                                               'padding_side': 'right', 'tokenizer_class': 'LlamaTokenizer', 'unk_token': '<unk>'})
    open(os.path.join(out, 'delta', 'tokenizer.model'), 'wb').write(sp_bytes)
    # vision: CLIPModel folder, vision tower only (fp16, as the original ran it)
    torch.save(half_sd(clip_state(model.vision)), os.path.join(out, 'vision', 'pytorch_model.bin'))
    jdump(os.path.join(out, 'vision', 'config.json'), {
        '_name_or_path': 'openai/clip-vit-large-patch14', 'architectures': ['CLIPModel'], 'model_type': 'clip', 'projection_dim': 768,
        'text_config': {'model_type': 'clip_text_model', 'hidden_size': 768, 'num_hidden_layers': 12, 'vocab_size': 49408},
        'vision_config': {
            'model_type': 'clip_vision_model', 'hidden_size': d['clip_hidden'], 'intermediate_size': d['clip_intermediate'],
            'num_attention_heads': d['clip_heads'], 'num_hidden_layers': d['clip_layers'], 'image_size': d['image_size'],
            'patch_size': d['patch_size'], 'layer_norm_eps': 1e-5, 'hidden_act': 'quick_gelu', 'projection_dim': 768, 'num_channels': 3,
        },
    })
    jdump(os.path.join(out, 'vision', 'preprocessor_config.json'), {
        'crop_size': d['image_size'], 'do_center_crop': True, 'do_normalize': True, 'do_resize': True,
        'feature_extractor_type': 'CLIPFeatureExtractor', 'image_mean': MEAN, 'image_std': STD, 'resample': 3, 'size': d['image_size'],
    })
    return base16, delta


def load_folded(model, base16, delta, vision16=None):
    """The weights LLaVA-Med ran: apply_delta.py in fp16 (fp16 operands, fp16 sum), then the fp16 vision tower."""
    sd = {}
    for k, dw in delta.items():
        if k in base16:
            b = base16[k]
            w = dw.clone()
            if w.shape == b.shape:
                w = w + b  # fp16 + fp16 -> fp16
            else:
                w[: b.shape[0], : b.shape[1]] = w[: b.shape[0], : b.shape[1]] + b
            sd[k] = w.float()
        else:
            sd[k] = dw.float()
    with torch.no_grad():
        for k, w in sd.items():
            if k.startswith('model.mm_projector.'):
                getattr(model.mm_projector, k.split('.')[-1]).copy_(w)
        for k, p in lm_state(model).items():
            p.copy_(sd[k])
        for k, p in clip_state(model.vision).items():
            p.copy_(vision16[k].float() if vision16 is not None else p.detach().half().float())


def load_release(mdir):
    """The released folders back into a model (apply_delta fp16 fold) and the delta's tokenizer."""
    tok = Tok(spm.SentencePieceProcessor(model_file=os.path.join(mdir, 'delta', 'tokenizer.model')))
    cfg = json.load(open(os.path.join(mdir, 'delta', 'config.json')))
    vcfg = json.load(open(os.path.join(mdir, 'vision', 'config.json')))['vision_config']
    DIMS.update(hidden=cfg['hidden_size'], layers=cfg['num_hidden_layers'], heads=cfg['num_attention_heads'],
                intermediate=cfg['intermediate_size'], clip_hidden=vcfg['hidden_size'], clip_layers=vcfg['num_hidden_layers'],
                clip_heads=vcfg['num_attention_heads'], clip_intermediate=vcfg['intermediate_size'])
    base16 = torch.load(os.path.join(mdir, 'base', 'pytorch_model.bin'))
    index = json.load(open(os.path.join(mdir, 'delta', 'pytorch_model.bin.index.json')))
    delta = {}
    for fn in sorted(set(index['weight_map'].values())):
        delta.update(torch.load(os.path.join(mdir, 'delta', fn)))
    vision16 = torch.load(os.path.join(mdir, 'vision', 'pytorch_model.bin'))
    model = Llava(DIMS, tok.v + 4)
    model.eval()
    load_folded(model, base16, delta, vision16)
    return model, tok


# ----------------------------------------------------------------------------------------------- eval
@torch.no_grad()
def greedy(model, tok, question, px):
    feats = model.vision.features(px[None])
    before, after = tok.prompt(question)
    prompt = before + [tok.patch] * 256 + after
    out = []
    for _ in range(MAX_NEW):
        ids = torch.tensor([prompt + out])
        logits = model(ids, torch.ones_like(ids, dtype=torch.bool), torch.tensor([len(before)]), feats)
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        if '###' in tok.decode(out) or nxt == 2:
            break
    text = tok.decode(out)
    i = text.find('###')
    return prompt, out, (text[:i] if i >= 0 else text).strip()


@torch.no_grad()
def validate(model, tok, n_images, seed=VAL_SEED, chunk=8):
    """Exact-match accuracy per (kind, question) on n_images fresh images, every question of each: teacher-forced,
    an answer counts when every one of its tokens is the argmax -- exactly when greedy decoding writes it."""
    model.eval()
    res = {}
    for c0 in range(0, n_images, chunk):
        pxs, items, keys = [], [], []
        for j, i in enumerate(range(c0, min(n_images, c0 + chunk))):
            kind, img, qa = task.make_image(seed, i)
            pxs.append(preprocess(img))
            for q, ans, _, _ in qa:
                items.append((q, tok.answer(ans), j))
                keys.append(f'{kind}: {q}')
        feats = model.vision.features(torch.stack(pxs))
        ids, valid, img_pos, tgt = batch(tok, items)
        m = max(len(x[1]) for x in tgt)
        qidx = torch.zeros(len(items), m, dtype=torch.long)
        for i, (p, ans) in enumerate(tgt):
            qidx[i, : len(ans)] = torch.arange(p, p + len(ans))
        pred = model(ids, valid, img_pos, feats[[it[2] for it in items]], qidx=qidx).argmax(-1)
        for i, (p, ans) in enumerate(tgt):
            r = res.setdefault(keys[i], [0, 0])
            r[0] += int(pred[i, : len(ans)].tolist() == ans)
            r[1] += 1
    model.train()
    return {k: res[k] for k in sorted(res)}


# What made assets/demo: `train.py OUT --recipe` runs these stages in turn, each a `train.py OUT ARGS` run (a later
# stage would resume from the previous stage's release in OUT/model: same base and tokenizer, new images). One stage:
# the vision tower's own pre-training, then LLaVA training with the tower frozen.
RECIPE = [
    '--vision-steps 2500 --freeze-vision --steps 2000 --images-per-step 5 --val-images 200',
]


def parse(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--recipe', action='store_true', help='run every stage of RECIPE (what made assets/demo); other options are ignored')
    ap.add_argument('--recipe-steps', type=int, default=0, help='with --recipe: N steps per stage instead (a quick reproducibility check)')
    ap.add_argument('--steps', type=int, default=1500)
    ap.add_argument('--images-per-step', type=int, default=4)
    ap.add_argument('--questions-per-image', type=int, default=2)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--time-limit', type=float, default=1e9, help='stop early after this many seconds (recorded)')
    ap.add_argument('--vocab', type=int, default=700)
    ap.add_argument('--reference-only', action='store_true', help='skip training: rewrite task/ and reference/ from OUT/model')
    ap.add_argument('--resume', action='store_true', help='continue from the release in OUT/model (same base and tokenizer)')
    ap.add_argument('--image-offset', type=int, default=0, help='first training image index (a resumed run takes new images)')
    ap.add_argument('--modality-rate', type=float, default=1.0,
                    help='keep the "What modality" question in the sample with this probability (the others are harder)')
    ap.add_argument('--clip-layers', type=int, default=DIMS['clip_layers'],
                    help='CLIP layers (the last never runs: features are hidden_states[-2])')
    ap.add_argument('--val-images', type=int, default=0,
                    help='after training (or with --reference-only), exact-match accuracy per question on this many fresh images')
    ap.add_argument('--vision-steps', type=int, default=0,
                    help='a fresh run first pre-trains the vision tower alone for this many steps (pretrain_vision)')
    ap.add_argument('--vision-images-per-step', type=int, default=16)
    ap.add_argument('--vision-lr', type=float, default=3e-3)
    ap.add_argument('--freeze-vision', action='store_true', help='LLaVA training leaves the vision tower as it is (as LLaVA-Med did)')
    ap.add_argument('--val-every', type=int, default=0, help='while training, a quick accuracy check (40 images) every this many steps')
    return ap.parse_args(argv)


def main():
    a = parse()
    if a.recipe:
        t0 = time.time()
        for i, stage in enumerate(RECIPE):
            print(f'== stage {i + 1} of {len(RECIPE)}: {stage}', flush=True)
            args = parse([a.out] + stage.split())
            if a.recipe_steps:
                args.steps, args.val_images = a.recipe_steps, 0
                args.vision_steps = min(args.vision_steps, a.recipe_steps)
            run(args)
        print(f'recipe done in {time.time() - t0:.0f} s', flush=True)
        return
    run(a)


def run(a):
    torch.set_num_threads(1)
    DIMS['clip_layers'] = a.clip_layers
    if a.reference_only:
        if a.val_images:  # the release's accuracy per question on fresh images
            model, tok = load_release(os.path.join(a.out, 'model'))
            for k, (ok, n) in validate(model, tok, a.val_images).items():
                print(f'val {ok:4d}/{n:<4d}  {k}', flush=True)
        torch.manual_seed(0)
        prev = os.path.join(a.out, 'reference', 'greedy.json')
        write_reference(a.out, json.load(open(prev))['training'] if os.path.exists(prev) else None)
        return
    torch.manual_seed(0)
    random.seed(0)
    torch.use_deterministic_algorithms(True)
    os.makedirs(a.out, exist_ok=True)
    work = os.path.join(a.out, 'work')
    os.makedirs(work, exist_ok=True)

    if a.resume:
        model, tok = load_release(os.path.join(a.out, 'model'))
        sp_path = os.path.join(work, 'sp.model')
        with open(os.path.join(a.out, 'model', 'delta', 'tokenizer.model'), 'rb') as f:
            open(sp_path, 'wb').write(f.read())
        base_lm = {k: v.float() for k, v in torch.load(os.path.join(a.out, 'model', 'base', 'pytorch_model.bin')).items()}
        prev = json.load(open(os.path.join(a.out, 'reference', 'greedy.json')))['training']
        model.train()
    else:
        model, tok, base_lm, prev = None, None, None, None
    if model is None:
        model, tok, base_lm = fresh(a, work)
    train(a, model, tok, base_lm, prev, work)


def fresh(a, work):
    # tokenizer on the task's text: the v0 prompt, every question and every answer as the model emits it
    corpus = [PREAMBLE.replace('\n', ' ')]
    qa_all = set()
    for i in range(400):
        _, _, qa = task.make_image(TRAIN_SEED, i)
        qa_all.update((q, ans) for q, ans, _, _ in qa)
    for q, ans in sorted(qa_all):
        corpus += [q, f'Assistant: {ans}###', f'Human: {q}###']
    corpus = corpus * 20 + [SYSTEM] * 50
    sp = train_tokenizer(work, corpus, a.vocab)
    tok = Tok(sp)
    print(f'vocab {tok.v} (+4 added); prompt length {len(tok.prompt("How many nodules are there?")[0]) + 256 + 2}', flush=True)

    model = Llava(DIMS, tok.v + 4)
    for l in model.layers:  # scaled residual init
        nn.init.normal_(l.o_proj.weight, std=0.02 / math.sqrt(2 * DIMS['layers']))
        nn.init.normal_(l.down_proj.weight, std=0.02 / math.sqrt(2 * DIMS['layers']))
    base_lm = {k: v.detach().clone()[: tok.v] if k in ('model.embed_tokens.weight', 'lm_head.weight') else v.detach().clone()
               for k, v in lm_state(model).items()}
    if a.vision_steps:
        a.vision_pretraining = pretrain_vision(a, model.vision)
    return model, tok, base_lm


def train(a, model, tok, base_lm, prev, work):
    if a.freeze_vision:
        model.vision.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr, weight_decay=0.0, betas=(0.9, 0.98))
    t0, c0, load0 = time.time(), time.process_time(), os.getloadavg()
    img_index = a.image_offset
    steps_done = 0
    ema = None
    for step in range(a.steps):
        if time.time() - t0 > a.time_limit:
            break
        lr = a.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.steps)))
        for g in opt.param_groups:
            g['lr'] = lr
        pxs, items = [], []
        for j in range(a.images_per_step):
            _, img, qa = task.make_image(TRAIN_SEED, img_index)
            img_index += 1
            pxs.append(preprocess(img))
            rq = random.Random(img_index)
            if a.modality_rate < 1 and rq.random() >= a.modality_rate:
                qa = [x for x in qa if x[3] != 'modality']
            for q, ans, _, _ in rq.sample(qa, min(a.questions_per_image, len(qa))):
                items.append((q, tok.answer(ans), j))
        with torch.set_grad_enabled(not a.freeze_vision):
            feats = model.vision.features(torch.stack(pxs))
        ids, valid, img_pos, tgt = batch(tok, items)
        m = max(len(x[1]) for x in tgt)
        qidx = torch.zeros(len(items), m, dtype=torch.long)
        labels = torch.full((len(items), m), -100, dtype=torch.long)
        for i, (p, ans) in enumerate(tgt):
            for k, tkn in enumerate(ans):
                qidx[i, k] = p + k
                labels[i, k] = tkn
        logits = model(ids, valid, img_pos, feats[[it[2] for it in items]], qidx=qidx)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps_done += 1
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 25 == 0:
            print(f'step {step} loss {ema:.4f} lr {lr:.2e} {time.time() - t0:.0f}s cpu {time.process_time() - c0:.0f}s '
                  f'load {os.getloadavg()[0]:.1f}', flush=True)
        if a.val_every and (step + 1) % a.val_every == 0 and step + 1 < a.steps:
            v = validate(model, tok, 40)
            print(f'step {step + 1} quick val: ' + ', '.join(f'{k[:4]}/{k.split(": ")[1][:20]} {ok}/{n}' for k, (ok, n) in v.items()), flush=True)
    train_s, cpu_s, load1 = time.time() - t0, time.process_time() - c0, os.getloadavg()
    print(f'trained {steps_done} steps ({img_index} images) in {train_s:.0f} s wall, {cpu_s:.0f} s cpu '
          f'({1000 * cpu_s / max(1, steps_done):.0f} ms cpu/step); load average {load0[0]:.1f} -> {load1[0]:.1f}', flush=True)
    val = {}
    if a.val_images:
        val = {k: f'{ok}/{n}' for k, (ok, n) in validate(model, tok, a.val_images).items()}
        for k, v in val.items():
            print(f'val {v:>8}  {k}', flush=True)

    model.eval()
    release(os.path.join(a.out, 'model'), model, base_lm, tok, os.path.join(work, 'sp.model'))
    training = {'steps': steps_done, 'images': img_index - a.image_offset, 'seconds': round(train_s), 'cpu_seconds': round(cpu_s),
                'load_average': [round(load0[0], 1), round(load1[0], 1)], 'final_loss_ema': ema,
                'validation': {'images': a.val_images, 'seed': VAL_SEED, 'exact': val},
                'torch': torch.__version__, 'threads': 1, 'dims': DIMS, 'vocab': tok.v,
                'args': {k: v for k, v in vars(a).items() if k not in ('out', 'time_limit', 'val_every', 'vision_pretraining')}}
    if getattr(a, 'vision_pretraining', None):
        training['vision_pretraining'] = a.vision_pretraining
    if prev is not None:
        training = {'stages': (prev.get('stages') or [prev]) + [training]}
    write_reference(a.out, training)


def write_reference(out, training):
    """Test split (task/) and the released model's greedy answers on it (reference/), from out/model."""
    model, tok = load_release(os.path.join(out, 'model'))

    # reference answers on the test split with the released (folded fp16) weights
    entries, images = task.make_split('test', TEST_IMAGES, TEST_SEED, TEST_PER_IMAGE)
    tdir = os.path.join(out, 'task')
    os.makedirs(os.path.join(tdir, 'images'), exist_ok=True)
    for name, img in images:
        img.save(os.path.join(tdir, 'images', name), optimize=True)
    jdump(os.path.join(tdir, 'test.json'), entries)
    imgs = dict(images)
    rdir = os.path.join(out, 'reference')
    os.makedirs(rdir, exist_ok=True)
    greedy_out = []
    with open(os.path.join(rdir, 'answers-pytorch.jsonl'), 'w') as f:
        for e in entries:
            q = e['conversations'][0]['value']
            _, gen, text = greedy(model, tok, q, preprocess(imgs[e["image"]]))
            qs = q.replace('<image>', '').strip()
            f.write(json.dumps({'question_id': e['id'], 'prompt': f'{qs}\n<image>', 'text': text, 'answer_id': f'pt-{e["id"]}',
                                'model_id': 'pytorch', 'metadata': {}}) + '\n')
            greedy_out.append({"id": e["id"], "answer": text, "tokens": gen})
    before, after = tok.prompt('How many nodules are there?')
    jdump(os.path.join(rdir, 'greedy.json'), {
        'note': 'PyTorch greedy answers of the released weights (apply_delta fp16 fold) on task/test.json; tokens = generated ids incl. the one that completes "###"',
        'promptExample': {'question': 'How many nodules are there?', 'before': before, 'after': after},
        'training': training,
        'answers': greedy_out,
    })
    ok = sum(g['answer'].lower().endswith(e['conversations'][1]['value'].lower()) for g, e in zip(greedy_out, entries))
    print(f'test: {ok}/{len(entries)} answers end with the expected one', flush=True)


if __name__ == '__main__':
    main()
