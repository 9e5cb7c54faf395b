import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Lets a closing server end connections that have no request in flight. Node's `closeIdleConnections` skips
 * connections that have not sent a request yet, and browsers and fetch open those ahead of time (Chromium
 * preconnects; undici reconnects after an aborted stream), so `server.close()` would otherwise wait for them
 * until `headersTimeout`. Connections serving a request are closed as soon as its response is done.
 */
export function trackConnections(server: Server): { closeIdle(): void } {
  const inFlight = new Map<Socket, number>();
  let closing = false;

  server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  server.on('request', (req, res) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      inFlight.set(socket, left);
      if (closing && left === 0) socket.destroy();
    });
  });

  return {
    closeIdle() {
      closing = true;
      for (const [socket, n] of inFlight) if (n === 0) socket.destroy();
    },
  };
}
