// Preloaded with node --require: the example's host names resolve to
// 127.0.0.1, as curl's --resolve does, so that a client connects to the
// test's nginx with the real name in SNI and Host.  Nothing else changes.
'use strict';

const dns = require('dns');

const names = new Set(['api.example.com', 'admin.example.com', 'chat.example.com']);
const systemLookup = dns.lookup;

dns.lookup = function lookup(hostname, options, callback) {
    if (typeof options === 'function') {
        callback = options;
        options = {};
    } else if (typeof options === 'number') {
        options = { family: options };
    }
    if (!names.has(String(hostname).toLowerCase())) {
        return systemLookup.call(this, hostname, options, callback);
    }
    if (options && options.all) {
        process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
    } else {
        process.nextTick(callback, null, '127.0.0.1', 4);
    }
    return {};
};
