/** What the CLI's small HTTP servers (codec-server, identity-server) share: a status-carrying error and a bounded body read. */
import type { IncomingMessage } from 'node:http';

/** An error answered with its status and message. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The request body, refused with 413 (`tooLarge`) past `maxBytes`. */
export async function readBoundedBody(req: IncomingMessage, maxBytes: number, tooLarge: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new HttpError(413, tooLarge);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
