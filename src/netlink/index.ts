// The netlink layer's public surface: sockets, typed operations and namespaces.
export { NetlinkSocket, withSocket } from './socket.ts';
export { SysError } from './libc.ts';
export * from './links.ts';
export * from './addrs.ts';
export * from './routes.ts';
export * from './neighs.ts';
export * from './request-batch.ts';
export * from './netns.ts';
export * from './sysctl.ts';
