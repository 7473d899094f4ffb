/**
 * The image layers on the CPU: conv2d as an implicit GEMM over an im2col tile of one sample
 * (one reused `[C·k·k, H'·W']` buffer, so nothing is allocated per sample), and max / average
 * pooling.
 */
import type { FloatArray } from './gemm.ts';
import { gemmNN, gemmNT, gemmTN } from './gemm.ts';
import type { Conv2dNode, PoolNode } from './graph.ts';
import type { MakeArray, Op, TensorOffsets } from './op.ts';

export class Conv2dOp implements Op {
  readonly outSize: number;
  readonly out: FloatArray;
  readonly dOut: FloatArray;
  private readonly weight: number;
  private readonly bias: number;
  /** im2col of one sample: row (c·k + ky)·k + kx, column oy·W' + ox. */
  private readonly cols: FloatArray;
  private readonly dCols: FloatArray;
  private readonly patch: number;
  private readonly pixels: number;
  private readonly inSize: number;

  constructor(
    private readonly node: Conv2dNode,
    offsets: TensorOffsets,
    capacity: number,
    make: MakeArray,
  ) {
    this.pixels = node.outHeight * node.outWidth;
    this.patch = node.channels * node.kernel * node.kernel;
    this.inSize = node.channels * node.height * node.width;
    this.outSize = node.filters * this.pixels;
    this.out = make(capacity * this.outSize);
    this.dOut = make(capacity * this.outSize);
    this.cols = make(this.patch * this.pixels);
    this.dCols = make(this.patch * this.pixels);
    this.weight = offsets[node.weight]!;
    this.bias = offsets[node.bias]!;
  }

  private im2col(x: FloatArray, x0: number): void {
    const { channels, height, width, kernel, stride, padding, outHeight, outWidth } = this.node;
    const cols = this.cols;
    let r = 0;
    for (let c = 0; c < channels; c++) {
      for (let ky = 0; ky < kernel; ky++) {
        for (let kx = 0; kx < kernel; kx++, r++) {
          let o = r * this.pixels;
          for (let oy = 0; oy < outHeight; oy++) {
            const y = oy * stride - padding + ky;
            const inside = y >= 0 && y < height;
            const row = x0 + (c * height + y) * width;
            for (let ox = 0; ox < outWidth; ox++, o++) {
              const xx = ox * stride - padding + kx;
              cols[o] = inside && xx >= 0 && xx < width ? x[row + xx]! : 0;
            }
          }
        }
      }
    }
  }

  forward(p: FloatArray, x: FloatArray, rows: number): void {
    const { filters } = this.node;
    const P = this.pixels;
    for (let s = 0; s < rows; s++) {
      this.im2col(x, s * this.inSize);
      const o0 = s * this.outSize;
      for (let f = 0; f < filters; f++)
        this.out.fill(p[this.bias + f]!, o0 + f * P, o0 + (f + 1) * P);
      gemmNN(filters, P, this.patch, p, this.weight, this.patch, this.cols, 0, P, this.out, o0, P);
    }
  }

  backward(p: FloatArray, x: FloatArray, dx: FloatArray | null, g: FloatArray, rows: number): void {
    const { filters, channels, height, width, kernel, stride, padding, outHeight, outWidth } =
      this.node;
    const P = this.pixels;
    const dy = this.dOut;
    for (let s = 0; s < rows; s++) {
      const o0 = s * this.outSize;
      for (let f = 0; f < filters; f++) {
        let sum = 0;
        for (let t = o0 + f * P; t < o0 + (f + 1) * P; t++) sum += dy[t]!;
        g[this.bias + f] = g[this.bias + f]! + sum;
      }
      this.im2col(x, s * this.inSize);
      gemmNT(filters, this.patch, P, dy, o0, P, this.cols, 0, P, g, this.weight, this.patch);
      if (dx === null) continue;
      const dCols = this.dCols;
      dCols.fill(0);
      gemmTN(this.patch, P, filters, p, this.weight, this.patch, dy, o0, P, dCols, 0, P);
      // col2im: every column entry adds back into the input pixel it was read from.
      const x0 = s * this.inSize;
      dx.fill(0, x0, x0 + this.inSize);
      let r = 0;
      for (let c = 0; c < channels; c++) {
        for (let ky = 0; ky < kernel; ky++) {
          for (let kx = 0; kx < kernel; kx++, r++) {
            let o = r * P;
            for (let oy = 0; oy < outHeight; oy++) {
              const y = oy * stride - padding + ky;
              if (y < 0 || y >= height) {
                o += outWidth;
                continue;
              }
              const row = x0 + (c * height + y) * width;
              for (let ox = 0; ox < outWidth; ox++, o++) {
                const xx = ox * stride - padding + kx;
                if (xx >= 0 && xx < width) dx[row + xx] = dx[row + xx]! + dCols[o]!;
              }
            }
          }
        }
      }
    }
  }
}

export class PoolOp implements Op {
  readonly outSize: number;
  readonly out: FloatArray;
  readonly dOut: FloatArray;
  /** Max pooling: index (within the sample) of each output's winning input. */
  private readonly winner: Int32Array;
  private readonly inSize: number;

  constructor(
    private readonly node: PoolNode,
    capacity: number,
    make: MakeArray,
  ) {
    this.inSize = node.channels * node.height * node.width;
    this.outSize = node.channels * node.outHeight * node.outWidth;
    this.out = make(capacity * this.outSize);
    this.dOut = make(capacity * this.outSize);
    this.winner = new Int32Array(node.op === 'maxpool2d' ? capacity * this.outSize : 0);
  }

  forward(_p: FloatArray, x: FloatArray, rows: number): void {
    const { channels, height, width, size, stride, outHeight, outWidth, op } = this.node;
    const isMax = op === 'maxpool2d';
    const inv = 1 / (size * size);
    let o = 0;
    for (let s = 0; s < rows; s++) {
      const x0 = s * this.inSize;
      for (let c = 0; c < channels; c++) {
        for (let oy = 0; oy < outHeight; oy++) {
          for (let ox = 0; ox < outWidth; ox++, o++) {
            let best = -Infinity;
            let at = 0;
            let sum = 0;
            for (let ky = 0; ky < size; ky++) {
              const row = (c * height + oy * stride + ky) * width + ox * stride;
              for (let kx = 0; kx < size; kx++) {
                const v = x[x0 + row + kx]!;
                sum += v;
                // Ties go to the first (lowest index) input, as in PyTorch.
                if (v > best) {
                  best = v;
                  at = row + kx;
                }
              }
            }
            if (isMax) {
              this.out[o] = best;
              this.winner[o] = at;
            } else {
              this.out[o] = sum * inv;
            }
          }
        }
      }
    }
  }

  backward(
    _p: FloatArray,
    _x: FloatArray,
    dx: FloatArray | null,
    _g: FloatArray,
    rows: number,
  ): void {
    if (dx === null) return;
    const { channels, height, width, size, stride, outHeight, outWidth, op } = this.node;
    dx.fill(0, 0, rows * this.inSize);
    const dy = this.dOut;
    if (op === 'maxpool2d') {
      for (let s = 0, o = 0; s < rows; s++) {
        const x0 = s * this.inSize;
        for (let t = 0; t < this.outSize; t++, o++) {
          const i = x0 + this.winner[o]!;
          dx[i] = dx[i]! + dy[o]!;
        }
      }
      return;
    }
    const inv = 1 / (size * size);
    let o = 0;
    for (let s = 0; s < rows; s++) {
      const x0 = s * this.inSize;
      for (let c = 0; c < channels; c++) {
        for (let oy = 0; oy < outHeight; oy++) {
          for (let ox = 0; ox < outWidth; ox++, o++) {
            const share = dy[o]! * inv;
            for (let ky = 0; ky < size; ky++) {
              const row = x0 + (c * height + oy * stride + ky) * width + ox * stride;
              for (let kx = 0; kx < size; kx++) dx[row + kx] = dx[row + kx]! + share;
            }
          }
        }
      }
    }
  }
}
