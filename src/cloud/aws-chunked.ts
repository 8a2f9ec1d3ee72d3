/**
 * Decodes an aws-chunked body as it streams (the framing the SDKs and the
 * AWS CLI use for streamed uploads):
 *
 *   SIZE-HEX[;chunk-signature=SIG]\r\n DATA \r\n  …  0[;chunk-signature=SIG]\r\n
 *   [trailer-name:value\r\n …] [x-amz-trailer-signature:SIG\r\n] \r\n
 *
 * Signed chunks are verified as each one ends: its signature is chained from
 * the previous one (the seed is the request's own signature), so a chunk
 * cannot be changed, dropped or reordered. Data is passed on as it arrives
 * and never held whole; a bad chunk fails the stream, and the consumer (who
 * writes to a temporary file) discards everything. The trailers are kept for
 * the consumer to check its checksums against.
 */
import { createHash, createHmac, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AuthFailure, type ChunkSigning, sameSignature } from './authenticate.js';
import { AwsError } from './aws-error.js';
import { EMPTY_SHA256 } from './sigv4.js';

/** A chunk header or trailer line longer than this is refused (they are tens of bytes). */
const MAX_LINE = 4096;
/** The whole trailer section (a checksum or two and a signature). */
const MAX_TRAILER_BYTES = 16 * 1024;
const MAX_TRAILERS = 16;

type State = 'header' | 'data' | 'data-end' | 'trailer' | 'done';

function malformed(what: string): AwsError {
  return new AwsError(400, 'InvalidRequest', `The aws-chunked body is malformed: ${what}.`);
}

function badChunkSignature(): AuthFailure {
  return new AuthFailure(
    'bad-signature',
    'The request signature we calculated does not match the signature you provided: a chunk signature is wrong.',
  );
}

export interface AwsChunkedOptions {
  /** Present for STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER): verify each chunk's signature. */
  readonly signing?: ChunkSigning;
  /** Whether trailers may follow the last chunk (…-TRAILER). */
  readonly trailer: boolean;
  /** x-amz-decoded-content-length, when sent: the decoded size must be exactly this. */
  readonly decodedLength?: number;
}

export class AwsChunkedDecoder extends Transform {
  private readonly options: AwsChunkedOptions;
  private state: State = 'header';
  private line = '';
  private remaining = 0;
  private chunkSignature = '';
  private chunkHash: Hash | undefined;
  private previous: string;
  private decoded = 0;
  private trailerBytes = 0;
  private readonly trailerLines: string[] = [];
  readonly trailers = new Map<string, string>();

  constructor(options: AwsChunkedOptions) {
    super();
    this.options = options;
    this.previous = options.signing?.seed ?? '';
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.consume(chunk);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.state !== 'done') {
      callback(
        new AwsError(
          400,
          'IncompleteBody',
          'You did not provide the number of bytes specified by the Content-Length HTTP header.',
        ),
      );
      return;
    }
    callback();
  }

  private consume(buf: Buffer): void {
    let i = 0;
    while (i < buf.length) {
      switch (this.state) {
        case 'header':
        case 'trailer': {
          const nl = buf.indexOf(0x0a, i);
          const end = nl < 0 ? buf.length : nl + 1;
          this.line += buf.toString('latin1', i, end);
          if (this.state === 'trailer') {
            this.trailerBytes += end - i;
            if (this.trailerBytes > MAX_TRAILER_BYTES) throw malformed('the trailer is too long');
          }
          if (this.line.length > MAX_LINE) throw malformed('a chunk header is too long');
          i = end;
          if (nl < 0) break;
          if (!this.line.endsWith('\r\n')) throw malformed('a line does not end in CRLF');
          const text = this.line.slice(0, -2);
          this.line = '';
          if (this.state === 'header') this.chunkHeader(text);
          else this.trailerLine(text);
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, buf.length - i);
          const piece = buf.subarray(i, i + n);
          this.chunkHash?.update(piece);
          this.decoded += n;
          if (this.options.decodedLength !== undefined && this.decoded > this.options.decodedLength)
            throw malformed('more data than x-amz-decoded-content-length');
          this.push(piece);
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) this.state = 'data-end';
          break;
        }
        case 'data-end': {
          // The CRLF after a chunk's data, possibly split across reads.
          this.line += buf.toString('latin1', i, i + 1);
          i++;
          if (this.line.length < 2) break;
          if (this.line !== '\r\n') throw malformed('chunk data is not followed by CRLF');
          this.line = '';
          this.endChunk();
          this.state = 'header';
          break;
        }
        case 'done':
          throw malformed('data after the final chunk');
      }
    }
  }

  private chunkHeader(text: string): void {
    const [sizeText = '', ...extensions] = text.split(';');
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) throw malformed(`bad chunk size '${sizeText}'`);
    const size = Number.parseInt(sizeText, 16);
    if (!Number.isSafeInteger(size)) throw malformed('chunk size too large');
    let signature: string | undefined;
    for (const ext of extensions) {
      const eq = ext.indexOf('=');
      if (eq > 0 && ext.slice(0, eq).trim() === 'chunk-signature')
        signature = ext.slice(eq + 1).trim();
    }
    if (this.options.signing !== undefined) {
      if (signature === undefined || !/^[0-9a-f]{64}$/.test(signature))
        throw malformed('a chunk has no chunk-signature');
      this.chunkSignature = signature;
      this.chunkHash = createHash('sha256');
    }
    if (size === 0) {
      this.endChunk();
      if (this.options.decodedLength !== undefined && this.decoded !== this.options.decodedLength)
        throw new AwsError(
          400,
          'IncompleteBody',
          'You did not provide the number of bytes specified by the x-amz-decoded-content-length header.',
        );
      this.state = 'trailer';
      return;
    }
    this.remaining = size;
    this.state = 'data';
  }

  /** Verifies the chunk that just ended (signed streams); its signature becomes the next one's previous. */
  private endChunk(): void {
    const signing = this.options.signing;
    if (signing === undefined || this.chunkHash === undefined) return;
    const toSign = [
      'AWS4-HMAC-SHA256-PAYLOAD',
      signing.amzDate,
      signing.scope,
      this.previous,
      EMPTY_SHA256,
      this.chunkHash.digest('hex'),
    ].join('\n');
    const expected = createHmac('sha256', signing.key).update(toSign).digest('hex');
    if (!sameSignature(expected, this.chunkSignature)) throw badChunkSignature();
    this.previous = this.chunkSignature;
    this.chunkHash = undefined;
  }

  private trailerLine(text: string): void {
    if (text === '') {
      this.finishTrailers();
      this.state = 'done';
      return;
    }
    if (!this.options.trailer) throw malformed('trailers were not announced');
    if (this.trailerLines.length >= MAX_TRAILERS) throw malformed('too many trailers');
    const colon = text.indexOf(':');
    if (colon <= 0) throw malformed('a trailer is not name:value');
    this.trailerLines.push(text);
  }

  private finishTrailers(): void {
    const signing = this.options.signing;
    let trailerSignature: string | undefined;
    let canonical = '';
    for (const line of this.trailerLines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'x-amz-trailer-signature') {
        trailerSignature = value;
        continue;
      }
      this.trailers.set(name, value);
      canonical += `${name}:${value}\n`;
    }
    if (signing === undefined || !this.options.trailer) return;
    // The trailer's signature chains from the last chunk's.
    if (trailerSignature === undefined) throw malformed('the trailer has no signature');
    const toSign = [
      'AWS4-HMAC-SHA256-TRAILER',
      signing.amzDate,
      signing.scope,
      this.previous,
      createHash('sha256').update(canonical).digest('hex'),
    ].join('\n');
    const expected = createHmac('sha256', signing.key).update(toSign).digest('hex');
    if (!sameSignature(expected, trailerSignature)) throw badChunkSignature();
  }
}
