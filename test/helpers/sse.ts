export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
  json: any;
}

/** An open Server-Sent Events response, read as a test would: collect events, wait for them, close. */
export interface SseStream {
  status: number;
  headers: Headers;
  /** The body when the response is not a stream (a problem+json refusal). */
  body: any;
  events: SseEvent[];
  /** Resolves once the server has ended the stream. */
  ended: Promise<void>;
  /** Waits until at least `n` events have arrived, and returns the first `n`. */
  take(n: number, timeoutMs?: number): Promise<SseEvent[]>;
  close(): void;
}

/** Opens `url` as EventSource would (Accept: text/event-stream), with extra headers such as Last-Event-ID. */
export async function openStream(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: abort.signal,
  });
  const events: SseEvent[] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
  };

  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return {
      status: res.status,
      headers: res.headers,
      body,
      events,
      ended: Promise.resolve(),
      take: () => Promise.reject(new Error(`not a stream: ${res.status} ${text}`)),
      close: () => {},
    };
  }

  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseBlock(block);
          if (event) {
            events.push(event);
            wake();
          }
        }
      }
    } catch {
      // aborted by close()
    } finally {
      wake();
    }
  })();
  let done = false;
  void ended.then(() => (done = true));

  return {
    status: res.status,
    headers: res.headers,
    body: undefined,
    events,
    ended,
    async take(n, timeoutMs = 10_000) {
      if (events.length < n) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`timed out waiting for ${n} events; got ${events.length}`));
          }, timeoutMs);
          function check() {
            if (events.length >= n || done) {
              clearTimeout(timer);
              waiters.delete(check);
              if (events.length >= n) resolve();
              else reject(new Error(`stream ended after ${events.length} of ${n} events`));
            }
          }
          waiters.add(check);
          check();
        });
      }
      return events.slice(0, n);
    },
    close: () => abort.abort(),
  };
}

function parseBlock(block: string): SseEvent | undefined {
  let id: string | undefined;
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return undefined;
  const text = data.join('\n');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { id, event, data: text, json };
}
