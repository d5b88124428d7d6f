// Development entry: `node --import tsx src/agent/main.ts [FLAGS]` runs the agent from source.
// The built executable runs it through `pier agent` (src/cli/agent-launch.ts), which evaluates
// the agent bundle (src/agent/bundle-entry.ts) only then.
import { runAgent } from './agent.ts';

const code = await runAgent(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
process.exit(code);
