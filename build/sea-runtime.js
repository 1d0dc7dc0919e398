// Prepended to the single-executable bundle (build/build-agent.mjs). Inside the
// executable, files that libraries read next to their own source (.proto files,
// the raw-socket addon) are SEA assets: they are written out once to a private
// directory, and `__dirname` in those libraries points into it.
/* eslint-disable */
var __nfshaAssets = (function () {
  var fs = require('node:fs'), path = require('node:path'), os = require('node:os');
  var sea;
  try { sea = require('node:sea'); } catch (e) { sea = null; }
  var inSea = !!(sea && sea.isSea && sea.isSea());
  var root = null;
  function extract() {
    if (root) return root;
    var manifest = JSON.parse(sea.getAsset('manifest.json', 'utf8'));
    root = path.join(os.tmpdir(), 'nfsha-assets-' + manifest.id);
    if (!fs.existsSync(path.join(root, '.complete'))) {
      for (var i = 0; i < manifest.files.length; i++) {
        var rel = manifest.files[i];
        var out = path.join(root, rel);
        fs.mkdirSync(path.dirname(out), { recursive: true });
        fs.writeFileSync(out, Buffer.from(sea.getRawAsset(rel)));
      }
      fs.writeFileSync(path.join(root, '.complete'), '');
    }
    return root;
  }
  return {
    inSea: inSea,
    dir: function (rel, real) { return inSea ? path.join(extract(), rel) : real; },
    native: function (rel) {
      var m = { exports: {} };
      process.dlopen(m, path.join(extract(), rel));
      return m.exports;
    },
  };
})();
