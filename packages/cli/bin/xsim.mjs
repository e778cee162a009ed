#!/usr/bin/env node
// `npx xsim`: the CLI is TypeScript run without a build step (tsx), as the workers are.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
