/**
 * The internet checksum's one's-complement sum (RFC 1071), shared by every
 * kernel's IP stack (netstack) and the NICs' checksum engines: one fast
 * implementation, so the hardware model is not slower at summing than the
 * software it offloads.
 */
/** Is this machine little-endian (the word-at-a-time sum reads native 32-bit words)? */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Below this many octets the word-at-a-time sum is not worth its view. */
const WORDS_FROM = 128;

/** A word view of the whole buffer, kept for the buffer summed last (a domain's RAM, a NIC's FIFO: the same one, frame after frame). */
let wordsBuf: ArrayBufferLike | null = null;
let wordsView: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
function wordsOf(buf: ArrayBufferLike): Uint32Array {
  if (buf !== wordsBuf) {
    wordsView = new Uint32Array(buf, 0, buf.byteLength >>> 2);
    wordsBuf = buf;
  }
  return wordsView;
}

/**
 * RFC 1071 one's-complement sum over [off, off+len), folded, not inverted.
 * Long ranges are summed four octets at a time as native words (RFC 1071
 * §2(B): the sum is byte-order independent, the little-endian sum is the
 * big-endian one byte-swapped; §2(C): carries are kept in a wider
 * accumulator and folded once), once the range reaches a 4-octet boundary at
 * an even distance from its start; the rest pair by pair.
 */
export function onesSum(b: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  let i = off;
  const end = off + len;
  if (len >= WORDS_FROM && LITTLE_ENDIAN && ((b.byteOffset + off) & 1) === 0) {
    // Pairs up to the 4-octet boundary (0 or 1 pair: the start is even), then whole words.
    if ((b.byteOffset + i) & 2) {
      sum += (b[i] << 8) | b[i + 1];
      i += 2;
    }
    const words = (end - i) >>> 2;
    const u32 = wordsOf(b.buffer);
    const first = (b.byteOffset + i) >>> 2;
    let w = 0;
    for (let k = first, last = first + words; k < last; k++) w += u32[k];
    // w < 2^53 (at most 2^21 words of 2^32): fold to 16 bits, then swap to network order.
    while (w > 0xffff) w = Math.floor(w / 65536) + (w % 65536);
    sum += ((w & 0xff) << 8) | (w >>> 8);
    i += words << 2;
  }
  const pairsEnd = i + ((end - i) & ~1);
  for (; i < pairsEnd; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (i < end) sum += b[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
