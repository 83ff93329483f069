#!/usr/bin/env python3
"""Where the demo model fails, per question: its exact accuracy on fresh images next to the majority answer's
(what a model that ignores the image scores), and a linear probe on its own image features (does the vision
side carry the answer?).

Usage: python3 scripts/demo-model/diagnose.py [MODEL_DIR=assets/demo/model] [--images 200] [--probe-images 600]

- accuracy: train.validate (teacher-forced exact match, = greedy) on --images fresh images (seed 3, every question);
- majority: the most frequent answer of each question on the same images;
- probe: logistic regression (one per question) on the projected image features of --probe-images other images
  (seed 11), pooled four ways (mean and max over all 256 tokens, max and mean over each half of the 16 x 16 grid),
  trained on 70 % of them, scored on the rest.
"""
import argparse
import collections
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import task  # noqa: E402
import train  # noqa: E402


def pooled(model, img):
    f = model.mm_projector(model.vision.features(train.preprocess(img)[None]))[0]  # 256 x hidden
    g = f.view(16, 16, -1)
    left, right = g[:, :8].reshape(-1, f.shape[1]), g[:, 8:].reshape(-1, f.shape[1])
    return torch.cat([f.mean(0), f.max(0).values, left.max(0).values, right.max(0).values, left.mean(0), right.mean(0)])


def probe(rows):
    X = torch.stack([r[0] for r in rows])
    labels = sorted(set(r[1] for r in rows))
    y = torch.tensor([labels.index(r[1]) for r in rows])
    tr = int(len(rows) * 0.7)
    mu, sd = X[:tr].mean(0), X[:tr].std(0) + 1e-6
    X = (X - mu) / sd
    W = torch.zeros(X.shape[1], len(labels), requires_grad=True)
    b = torch.zeros(len(labels), requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=0.01)
    for _ in range(400):
        loss = torch.nn.functional.cross_entropy(X[:tr] @ W + b, y[:tr]) + 1e-3 * (W ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ((X[tr:] @ W + b).argmax(1) == y[tr:]).float().mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('model', nargs='?', default=os.path.join(os.path.dirname(__file__), '..', '..', 'assets', 'demo', 'model'))
    ap.add_argument('--images', type=int, default=200)
    ap.add_argument('--probe-images', type=int, default=600)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, tok = train.load_release(a.model)
    model.eval()
    acc = train.validate(model, tok, a.images)
    answers = collections.defaultdict(collections.Counter)
    kinds = {}
    for i in range(a.images):
        kind, _, qa = task.make_image(train.VAL_SEED, i)
        for q, ans, at, _ in qa:
            answers[f'{kind}: {q}'][ans] += 1
            kinds[f'{kind}: {q}'] = at
    feats = collections.defaultdict(list)
    with torch.no_grad():
        for i in range(a.probe_images):
            kind, img, qa = task.make_image(11, i)
            p = pooled(model, img)
            for q, ans, _, _ in qa:
                feats[f'{kind}: {q}'].append((p, ans))
    tot = {'CLOSED': [0, 0, 0], 'OPEN': [0, 0, 0]}
    print(f'{"model":>9} {"majority":>9} {"probe":>6}  question ({a.images} fresh images; probe on {a.probe_images})')
    for k, (ok, n) in acc.items():
        maj = answers[k].most_common(1)[0][1]
        pr = probe(feats[k]) if len(set(r[1] for r in feats[k])) > 1 else 1.0
        t = tot[kinds[k]]
        t[0] += ok
        t[1] += maj
        t[2] += n
        print(f'{ok:4d}/{n:<4d} {maj:4d}/{n:<4d} {100 * pr:5.1f}%  {k} ({kinds[k].lower()})')
    for at, (ok, maj, n) in tot.items():
        print(f'{at.lower()}: model {ok}/{n} ({100 * ok / n:.1f} %), majority answer {maj}/{n} ({100 * maj / n:.1f} %)')


if __name__ == '__main__':
    main()
