// zod set-up for a short-lived process, imported by every module that declares schemas so it
// runs before any schema is built (jitless is read when an object schema is constructed).
//
// No JIT: zod compiles a specialised parser for every object schema on its first parse; a CNI
// plugin parses each schema about once, so compiling costs more than it saves (measured: tens
// of ms on a full ADD).
//
// English messages: zod/mini, unlike classic zod, loads no locale; without one every issue
// would read "Invalid input". Pier's error details quote zod's English texts.
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config({ jitless: true });
config(en());
