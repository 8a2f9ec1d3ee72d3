/**
 * The body of a request to a streaming service, as a stream that checks
 * what the signature promised while it flows: a declared SHA-256 is compared
 * at the end (the stream fails instead of ending when it differs, so a
 * consumer that commits only after the end never commits a mismatched body),
 * aws-chunked framing is removed and its chunk signatures verified.
 */
import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable, Transform, type TransformCallback } from 'node:stream';
import { AuthFailure, type PayloadCheck } from './authenticate.js';
import { AwsChunkedDecoder } from './aws-chunked.js';
import { AwsError } from './aws-error.js';

/** A streamed request body. */
export interface CloudPayload {
  /** The decoded bytes (aws-chunked framing removed), verified as they pass. */
  readonly stream: Readable;
  /** The decoded length when the request declares it (Content-Length or x-amz-decoded-content-length). */
  readonly length: number | undefined;
  /** Trailing headers of an aws-chunked body (x-amz-checksum-…), complete once the stream has ended. */
  readonly trailers: ReadonlyMap<string, string>;
  /** The header x-amz-trailer announced, lower case (undefined when none). */
  readonly trailerName: string | undefined;
}

/** Hashes what passes and fails at the end when it is not `expected`. */
class Sha256Check extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private readonly expected: string;

  constructor(expected: string) {
    super();
    this.expected = expected;
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.hash.digest('hex') !== this.expected)
      callback(
        new AuthFailure(
          'content-sha-mismatch',
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
      );
    else callback();
  }
}

/**
 * A client that goes away mid-body fails the stream (as a client error, not
 * the server's), so its consumer discards what it wrote.
 */
function failOnAbort(req: IncomingMessage, stream: Readable): void {
  // A failure can come before the consumer starts reading (a small body checked at its
  // end, a chunk refused): the stream keeps it and the consumer's read raises it then.
  stream.on('error', () => {});
  const fail = () => {
    if (!req.complete)
      stream.destroy(
        new AwsError(
          400,
          'IncompleteBody',
          'The connection closed before the request body was complete.',
        ),
      );
  };
  req.once('error', fail);
  req.once('close', fail);
}

function lengthHeader(value: string | string[] | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\d{1,16}$/.test(text))
    throw new AwsError(400, 'InvalidArgument', `The ${name} header is not a number of bytes.`);
  return Number(text);
}

/**
 * Opens `req`'s body as a verified stream (call once, after the signature
 * over the headers is verified). Nothing is read until the consumer first
 * takes `stream`; `onStart` runs then (the server sends 100 Continue to a
 * client that waits for it, so a request refused before its body is read is
 * refused before the body is sent).
 */
export function openPayload(
  req: IncomingMessage,
  check: PayloadCheck,
  onStart?: () => void,
): CloudPayload {
  const contentLength = lengthHeader(req.headers['content-length'], 'Content-Length');
  const trailerHeader = req.headers['x-amz-trailer'];
  const trailerName =
    typeof trailerHeader === 'string' ? trailerHeader.trim().toLowerCase() : undefined;
  let checking: Transform;
  let length: number | undefined;
  let trailers: ReadonlyMap<string, string> = new Map();
  if (check.kind !== 'chunked') {
    // Even an unchecked body goes through a stream of its own, so that an abort is a client error.
    checking = check.kind === 'sha256' ? new Sha256Check(check.hex) : new PassThrough();
    length = contentLength;
  } else {
    length = lengthHeader(
      req.headers['x-amz-decoded-content-length'],
      'x-amz-decoded-content-length',
    );
    const decoder = new AwsChunkedDecoder({
      trailer: check.trailer,
      ...(check.signing === undefined ? {} : { signing: check.signing }),
      ...(length === undefined ? {} : { decodedLength: length }),
    });
    checking = decoder;
    trailers = decoder.trailers;
  }
  failOnAbort(req, checking);
  let started = false;
  return {
    get stream(): Readable {
      if (!started) {
        started = true;
        onStart?.();
        req.pipe(checking);
      }
      return checking;
    },
    length,
    trailers,
    trailerName: check.kind === 'chunked' ? trailerName : undefined,
  };
}
