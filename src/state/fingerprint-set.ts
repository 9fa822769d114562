// The fingerprints of the people of the last delivered night, in memory while tonight is
// converted: a user whose fingerprint is among them is unchanged, and is counted without asking
// the state. Looking each user up in state.db cost about 10 µs (bench/RESULTS.md); this costs
// well under one. Only the first 64 bits of each fingerprint are kept (8 bytes a person: 8 MB
// for a million): two different users share them with a chance of about 1 in 10^19 a pair.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = 1 - LO;

export class FingerprintSet {
  private readonly values: BigUint64Array;
  /** The same memory as 32-bit words: a value's high and low halves, at 2i + HI and 2i + LO. */
  private readonly words: Uint32Array;
  private size = 0;
  private sorted = true;

  constructor(capacity: number) {
    this.values = new BigUint64Array(capacity);
    this.words = new Uint32Array(this.values.buffer);
  }

  get count(): number {
    return this.size;
  }

  /** Adds a fingerprint's first 64 bits (call seal() once all are added). */
  add(hi: number, lo: number): void {
    if (this.size >= this.values.length) throw new Error('FingerprintSet is full');
    this.words[2 * this.size + HI] = hi;
    this.words[2 * this.size + LO] = lo;
    this.size++;
    this.sorted = false;
  }

  seal(): void {
    this.values.subarray(0, this.size).sort();
    this.sorted = true;
  }

  has(hi: number, lo: number): boolean {
    if (!this.sorted) throw new Error('FingerprintSet.has before seal()');
    const w = this.words;
    let low = 0;
    let high = this.size - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const h = w[2 * mid + HI]!;
      const l = w[2 * mid + LO]!;
      if (h === hi && l === lo) return true;
      if (h < hi || (h === hi && l < lo)) low = mid + 1;
      else high = mid - 1;
    }
    return false;
  }
}
