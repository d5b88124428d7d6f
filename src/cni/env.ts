// Parses the CNI_* environment into a typed CniEnv, reporting every bad variable at once (code 4).
import { CniError, ErrorCode } from './errors.ts';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** The container-ID pattern of the Go library; network names must match it too. */
export const CONTAINER_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;
/** IFNAMSIZ is 16 including the terminating NUL. */
export const MAX_IFNAME_BYTES = 15;

interface EnvBase {
  /** CNI_PATH split on `:`, empty entries dropped; empty when unset. */
  path: string[];
  /** CNI_ARGS as given (parse with parseCniArgs); '' when unset. */
  args: string;
  /** CNI_NETNS_OVERRIDE=1: the caller allows CNI_NETNS to be the plugin's own netns. */
  netnsOverride: boolean;
}

/** ADD and CHECK: every attachment variable is present and valid. */
export interface AttachEnv extends EnvBase {
  command: 'ADD' | 'CHECK';
  containerId: string;
  netns: string;
  ifname: string;
}

/** DEL: CNI_NETNS is often empty (containerd's second DEL, netns gone after a reboot). */
export interface DelEnv extends EnvBase {
  command: 'DEL';
  containerId: string;
  netns: string | undefined;
  ifname: string;
}

/** VERSION, STATUS and GC concern the node, not one attachment: no attachment variables. */
export interface NodeEnv extends EnvBase {
  command: 'VERSION' | 'STATUS' | 'GC';
}

export type CniEnv = AttachEnv | DelEnv | NodeEnv;

type Env = Record<string, string | undefined>;

/** Why an interface name is unusable, or undefined when it is fine (the Go library's rules). */
export function checkInterfaceName(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (Buffer.byteLength(name) > MAX_IFNAME_BYTES) {
    return `is longer than ${MAX_IFNAME_BYTES} bytes`;
  }
  if (name === '.' || name === '..') return 'is . or ..';
  // \s covers Unicode spaces; U+0085 is whitespace to Go's unicode.IsSpace but not to \s.
  if (/[/:\s\u0085]/u.test(name)) return 'contains / or : or whitespace';
  return undefined;
}

function isCommand(value: string): value is CniCommand {
  return (CNI_COMMANDS as readonly string[]).includes(value);
}

/** Reads the CNI environment; throws one CniError(4) naming every missing or invalid variable. */
export function parseCniEnv(env: Env): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!isCommand(command)) {
    throw new CniError(
      ErrorCode.InvalidEnv,
      command ? `unknown CNI_COMMAND "${command}"` : 'required env variables [CNI_COMMAND] missing',
      `CNI_COMMAND must be one of ${CNI_COMMANDS.join(', ')}`,
    );
  }
  const base: EnvBase = {
    path: (env.CNI_PATH ?? '').split(':').filter((dir) => dir !== ''),
    args: env.CNI_ARGS ?? '',
    netnsOverride: env.CNI_NETNS_OVERRIDE === '1',
  };
  if (command === 'VERSION' || command === 'STATUS' || command === 'GC') {
    return { command, ...base };
  }

  const problems: Array<[variable: string, problem: string]> = [];
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId === '') problems.push(['CNI_CONTAINERID', 'is missing']);
  else if (!CONTAINER_ID_PATTERN.test(containerId)) {
    problems.push(['CNI_CONTAINERID', `${JSON.stringify(containerId)} must match ${CONTAINER_ID_PATTERN.source}`]);
  }
  const netns = env.CNI_NETNS ?? '';
  if (netns === '' && command !== 'DEL') problems.push(['CNI_NETNS', 'is missing']);
  const ifname = env.CNI_IFNAME ?? '';
  if (ifname === '') problems.push(['CNI_IFNAME', 'is missing']);
  else {
    const problem = checkInterfaceName(ifname);
    if (problem) problems.push(['CNI_IFNAME', `${JSON.stringify(ifname)} ${problem}`]);
  }

  if (problems.length) {
    throw new CniError(
      ErrorCode.InvalidEnv,
      `invalid env variables [${problems.map(([v]) => v).join(',')}]`,
      problems.map(([v, p]) => `${v} ${p}`).join('; '),
    );
  }
  if (command === 'DEL') {
    return { command, ...base, containerId, netns: netns === '' ? undefined : netns, ifname };
  }
  return { command, ...base, containerId, netns, ifname };
}
