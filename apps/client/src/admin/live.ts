/** The `/admin` socket.io connection: live summaries, snapshots and metrics records. */
import { io, type Socket } from 'socket.io-client';
import type { AdminClientToServerEvents, AdminServerToClientEvents } from '@meshgrad/core';

export type AdminSocket = Socket<AdminServerToClientEvents, AdminClientToServerEvents>;

export type LiveStatus =
  | { readonly kind: 'live' }
  | { readonly kind: 'reconnecting'; readonly reason: string }
  /** The server refused the token: retrying will not help. */
  | { readonly kind: 'refused'; readonly message: string };

/** Connects with the token in the handshake; socket.io reconnects on its own after a drop. */
export function connectLive(token: string, onStatus: (s: LiveStatus) => void): AdminSocket {
  const socket: AdminSocket = io('/admin', {
    transports: ['websocket'],
    auth: { token },
    reconnectionDelayMax: 3_000,
  });
  socket.on('connect', () => onStatus({ kind: 'live' }));
  socket.on('disconnect', (reason) => onStatus({ kind: 'reconnecting', reason }));
  socket.on('connect_error', (err: Error & { data?: { code?: string } }) => {
    const code = err.data?.code;
    if (code === 'ERR_UNAUTHORIZED' || code === 'ERR_FORBIDDEN') {
      socket.disconnect();
      onStatus({ kind: 'refused', message: err.message });
    } else {
      onStatus({ kind: 'reconnecting', reason: err.message });
    }
  });
  return socket;
}
