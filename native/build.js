// `npm install` / `npm ci` hook: builds the optional SEEK_DATA/SEEK_HOLE
// binding (build/Release/ferry_native.node) with the node-gyp bundled in npm.
// Quiet when it works. When it cannot (no C compiler, no Node headers), it
// shows why and lets the install succeed: without the binding ferry treats
// every byte of a raw image as data, which is correct, only slower on sparse
// images. Rebuild later with `npm run install`.
import { spawnSync } from 'node:child_process';

const gyp = process.env.npm_config_node_gyp;
const result = gyp
  ? spawnSync(process.execPath, [gyp, 'rebuild'], { encoding: 'utf8' })
  : spawnSync('node-gyp', ['rebuild'], {
      encoding: 'utf8',
      shell: process.platform === 'win32',
    });

if (result.status !== 0) {
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`;
  // Keep what explains the failure: compiler errors and node-gyp's reason, not its stack.
  const noise =
    /^gyp (info|http|ERR! (stack\s+at |System|command|cwd|node -v|node-gyp -v|\$npm_|not ok))/;
  const tail = output
    .split('\n')
    .filter((line) => line.trim() !== '' && !noise.test(line))
    .slice(-12)
    .join('\n');
  process.stderr.write(
    `${tail}\n\nferry: the optional native binding (SEEK_DATA/SEEK_HOLE) was not built; ` +
      'raw images will be read as fully allocated. Install a C compiler and the Node headers, ' +
      'then run `npm run install`.\n',
  );
}
