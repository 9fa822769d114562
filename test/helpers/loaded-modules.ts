// `node --import THIS_FILE ...`: records each module the process imports, its resolved URL one a
// line, in the file SIS2ALMA_LOADED names (test/fast-start.test.ts). Node's module hooks run on a
// thread of their own, so they append to the file as they go.
import { register } from 'node:module';

register('./loaded-modules-hooks.js', import.meta.url, { data: process.env.SIS2ALMA_LOADED });
