// Pier's version, taken from package.json at build time.
import pkg from '../package.json' with { type: 'json' };

export const PIER_VERSION: string = pkg.version;
