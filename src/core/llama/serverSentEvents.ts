// llama-server streams its answers as text/event-stream. The client reads them two ways (node:http
// for /infill on every keystroke, fetch for chat); both cut the text into `data:` payloads here,
// so they agree on line ends (`\n` or `\r\n`) and on a last line that lacks its newline.

/** Cuts text/event-stream text, chunk by chunk, into the payloads of its `data:` lines. */
export class ServerSentEventParser {
  private buf = '';

  /** The payloads of the `data:` lines that `text` completes, in order. */
  push(text: string): string[] {
    const buf = this.buf + text;
    const out: string[] = [];
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf('\n', start)) >= 0) {
      if (buf.startsWith('data:', start)) out.push(buf.slice(start + 5, nl).trim());
      start = nl + 1;
    }
    this.buf = buf.slice(start);
    return out;
  }

  /** At the end of the stream: the payload of a last `data:` line that had no newline. */
  end(): string | undefined {
    const rest = this.buf;
    this.buf = '';
    return rest.startsWith('data:') ? rest.slice(5).trim() : undefined;
  }
}

/** The `data:` payloads of a fetch response's text/event-stream body. */
export async function* readServerSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const events = new ServerSentEventParser();
  for await (const part of body as unknown as AsyncIterable<Uint8Array>) {
    yield* events.push(decoder.decode(part, { stream: true }));
  }
  const last = events.end();
  if (last !== undefined) yield last;
}
