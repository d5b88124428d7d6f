// zod set-up for a short-lived process: no JIT. zod compiles a specialised parser for every
// object schema on its first parse; a CNI plugin parses each schema about once, so compiling
// costs more than it saves (measured: tens of ms on a full ADD).
import { z } from 'zod';

z.config({ jitless: true });
