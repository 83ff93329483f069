// Types of bench/build-peers.mjs for the tests (test/bench/).
export const peersDir: string;
export const buildDir: string;
export const mtmdCli: string;
export const llamaBench: string;
export const llamaServer: string;
export function buildPeers(o?: { jobs?: number; force?: boolean }): { mtmdCli: string; llamaBench: string; llamaServer: string };
