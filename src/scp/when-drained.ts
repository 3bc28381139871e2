import type { Socket } from 'node:net';

/**
 * Resolves once the socket's unsent output is below its high water mark ('drain'), or it
 * closed. No own timeout: the caller's idle timer runs meanwhile, since nothing is sent.
 */
export async function whenDrained(socket: Socket): Promise<void> {
  if (!socket.writableNeedDrain || socket.destroyed) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
