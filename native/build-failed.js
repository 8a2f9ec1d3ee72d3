// Runs when `node-gyp rebuild` fails during `npm install` / `npm ci` (no C
// compiler or no Node headers). The binding is optional: without it ferry
// treats every byte of a raw image as data, which is correct but slower on
// sparse images. Say so once, and let the install succeed.
process.stderr.write(
  'ferry: optional native binding (SEEK_DATA/SEEK_HOLE) not built; raw images will be read ' +
    'as fully allocated. Install a C compiler and Node headers, then run `npm run install`.\n',
);
