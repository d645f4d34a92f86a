'use strict';
/**
 * Loads Prosodia's `.proto` files at run time with `@grpc/proto-loader`, so the package carries
 * no generated code that could drift from the protos.
 *
 * The files are looked for, in order: in `options.protoDir` or `$PROSODIA_PROTO_DIR`; in the
 * package's own `proto/` folder (a packed tarball has one: `npm pack` copies the protos there
 * in its `prepack` step); and in the repository's `proto/` two folders up (a checkout, or an
 * `npm install` of the folder, which links to it).
 * @module
 */

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

/** The proto files of package `prosodia.v1`, relative to the proto root. */
const PROTO_FILES = [
  'prosodia/v1/audio.proto',
  'prosodia/v1/emotion.proto',
  'prosodia/v1/models.proto',
];

/**
 * How messages look in JavaScript: camelCase fields, 64-bit integers as numbers, enums as
 * their names, unset fields as their defaults, and each oneof's set member named by a
 * virtual field (e.g. `response.result === 'window'`).
 */
const LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * The folders that may hold the protos, in the order they are tried.
 * @param {string} [protoDir] an explicit folder, tried first
 * @returns {string[]}
 */
function protoCandidates(protoDir) {
  const packageRoot = path.resolve(__dirname, '..');
  const candidates = [];
  if (protoDir) candidates.push(path.resolve(protoDir));
  if (process.env.PROSODIA_PROTO_DIR) candidates.push(path.resolve(process.env.PROSODIA_PROTO_DIR));
  candidates.push(path.join(packageRoot, 'proto'));
  candidates.push(path.resolve(packageRoot, '..', '..', 'proto'));
  return candidates;
}

/**
 * The first candidate folder that holds every proto file.
 * @param {string} [protoDir] an explicit folder, tried first
 * @returns {string}
 * @throws {Error} naming the folders tried, when none holds the protos
 */
function findProtoDir(protoDir) {
  const candidates = protoCandidates(protoDir);
  for (const dir of candidates) {
    if (PROTO_FILES.every((f) => fs.existsSync(path.join(dir, f)))) return dir;
  }
  throw new Error(
    `cannot find Prosodia's proto files (${PROTO_FILES.join(', ')}) under any of: ` +
      `${candidates.join(', ')}; set PROSODIA_PROTO_DIR to the repository's proto/ folder`,
  );
}

/** @type {Map<string, any>} */
const cache = new Map();

/**
 * The gRPC service constructors of `prosodia.v1` (and `grpc.health.v1`), loaded once per
 * proto folder.
 * @param {string} [protoDir] an explicit proto folder
 * @returns {{Emotion: typeof grpc.Client, Models: typeof grpc.Client, Health: typeof grpc.Client, protoDir: string}}
 */
function loadServices(protoDir) {
  const dir = findProtoDir(protoDir);
  let services = cache.get(dir);
  if (!services) {
    const definition = protoLoader.loadSync(PROTO_FILES, { ...LOADER_OPTIONS, includeDirs: [dir] });
    const loaded = /** @type {any} */ (grpc.loadPackageDefinition(definition));
    const health = /** @type {any} */ (
      grpc.loadPackageDefinition(protoLoader.fromJSON(HEALTH_JSON, LOADER_OPTIONS))
    );
    services = {
      Emotion: loaded.prosodia.v1.Emotion,
      Models: loaded.prosodia.v1.Models,
      Health: health.grpc.health.v1.Health,
      protoDir: dir,
    };
    cache.set(dir, services);
  }
  return services;
}

/**
 * The standard `grpc.health.v1` service, which the repository has no proto file for: only
 * `Check`, written as a protobufjs JSON descriptor.
 */
const HEALTH_JSON = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: {
                    ServingStatus: {
                      values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 },
                    },
                  },
                },
                Health: {
                  methods: {
                    Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

module.exports = { PROTO_FILES, findProtoDir, loadServices };
