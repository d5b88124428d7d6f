// resolv.conf -> the CNI result's `dns` object, as host-local's `resolvConf` option does.
import * as fs from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';

/** The CNI result's DNS object. */
export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** Parses resolv.conf text. Pure; unknown keywords and comments (`#`, `;`) are ignored. */
export function parseResolvConf(text: string): Dns {
  const nameservers: string[] = [];
  const search: string[] = [];
  const options: string[] = [];
  let domain: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [keyword, ...args] = line.split(/\s+/);
    if (!keyword || !args.length) continue;
    switch (keyword) {
      case 'nameserver':
        nameservers.push(args[0]);
        break;
      case 'domain':
        domain = args[0];
        break;
      case 'search':
        // Like glibc, the last search line wins.
        search.splice(0, search.length, ...args);
        break;
      case 'options':
        options.push(...args);
        break;
    }
  }
  const dns: Dns = {};
  if (nameservers.length) dns.nameservers = nameservers;
  if (domain !== undefined) dns.domain = domain;
  if (search.length) dns.search = search;
  if (options.length) dns.options = options;
  return dns;
}

/** Reads and parses the file a config's `resolvConf` names; an unreadable file is a config error. */
export function readResolvConf(path: string): Dns {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new CniError(
      ErrorCode.InvalidConfig,
      `cannot read resolvConf ${path}: ${code}`,
      `ipam.resolvConf: ${JSON.stringify(path)}`,
      { cause: err },
    );
  }
  return parseResolvConf(text);
}
