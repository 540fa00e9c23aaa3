#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A two-layer network with batch normalization, trained with plain NumPy SGD: bnorm runs every
batch-norm forward and backward. The data is synthetic: points of 4 classes around their own
centers in 20 dimensions, mixed by a random linear map so that no single feature separates them.

  dense(20 -> 64) -> BatchNormalization -> relu -> dense(64 -> 4) -> softmax cross-entropy

Run from the build tree with PYTHONPATH=build/python. --check exits non-zero unless the loss
fell and the held-out accuracy passed 90 % (the ctest python_train_example).
"""

import argparse
import sys
import time

import numpy as np

import bnorm

CLASSES, FEATURES, HIDDEN = 4, 20, 64


def make_data(rng, count):
    centers = rng.standard_normal((CLASSES, FEATURES)) * 1.2
    mix = rng.standard_normal((FEATURES, FEATURES)) / np.sqrt(FEATURES)
    labels = rng.integers(0, CLASSES, count)
    points = centers[labels] + rng.standard_normal((count, FEATURES))
    return (points @ mix * 3.0 + 5.0).astype(np.float32), labels


def softmax_cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(labels)), labels] + 1e-12).mean()
    grad = p
    grad[np.arange(len(labels)), labels] -= 1.0
    return loss, grad / len(labels)


class Network:
    def __init__(self, rng):
        self.w1 = (rng.standard_normal((FEATURES, HIDDEN)) / np.sqrt(FEATURES)).astype(np.float32)
        self.b1 = np.zeros(HIDDEN, np.float32)
        self.bn = bnorm.BatchNormalization(momentum=0.9)
        self.w2 = (rng.standard_normal((HIDDEN, CLASSES)) / np.sqrt(HIDDEN)).astype(np.float32)
        self.b2 = np.zeros(CLASSES, np.float32)

    def forward(self, x, training):
        self.x = x
        z = x @ self.w1 + self.b1
        self.h = self.bn(z, training=training)
        self.a = np.maximum(self.h, 0.0)
        return self.a @ self.w2 + self.b2

    def sgd_step(self, dlogits, lr):
        dw2 = self.a.T @ dlogits
        db2 = dlogits.sum(axis=0)
        da = dlogits @ self.w2.T
        dz = self.bn.backward((da * (self.h > 0)).astype(np.float32))
        dw1 = self.x.T @ dz
        db1 = dz.sum(axis=0)
        self.w2 -= lr * dw2
        self.b2 -= lr * db2
        self.w1 -= lr * dw1
        self.b1 -= lr * db1
        # The optimizer step of gamma and beta; set_weights keeps the moving statistics.
        gamma, beta, moving_mean, moving_variance = self.bn.get_weights()
        self.bn.set_weights([gamma - lr * self.bn.gradients["gamma"],
                             beta - lr * self.bn.gradients["beta"], moving_mean, moving_variance])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--check", action="store_true",
                        help="fail unless the loss fell and test accuracy > 90 %%")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x, labels = make_data(rng, 6000)
    x_train, y_train, x_test, y_test = x[:5000], labels[:5000], x[5000:], labels[5000:]
    net = Network(rng)
    batch, lr = 64, 0.1
    start = time.perf_counter()
    losses = []
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        epoch_loss = []
        for i in range(0, len(order), batch):
            rows = order[i:i + batch]
            loss, dlogits = softmax_cross_entropy(net.forward(x_train[rows], True), y_train[rows])
            net.sgd_step(dlogits, lr)
            epoch_loss.append(loss)
        losses.append(float(np.mean(epoch_loss)))
        accuracy = float((net.forward(x_test, False).argmax(axis=1) == y_test).mean())
        print(f"epoch {epoch + 1}: loss {losses[-1]:.4f}, test accuracy {accuracy:.1%}")
    print(f"trained in {time.perf_counter() - start:.2f} s")
    if args.check:
        if not losses[-1] < losses[0] or accuracy <= 0.9:
            print(f"train.py: FAILED: loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
                  f"accuracy {accuracy:.1%} (expected a falling loss and > 90 %)")
            return 1
        print("train.py: loss fell and accuracy passed 90 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
