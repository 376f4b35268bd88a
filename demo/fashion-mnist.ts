/**
 * The main job (`npm start`): `lowbit demo` (lib/cli/commands/demo.ts), the shipped Fashion-MNIST
 * models side by side against the float model in onnxruntime-node.
 *
 * Usage: npm start [-- --full] [--threads N] [--models DIR]
 */
import { main } from '../lib/cli/main.js';

process.exitCode = await main(['demo', ...process.argv.slice(2)]);
