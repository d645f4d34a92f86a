'use strict';
/**
 * Node client for Prosodia, the speech-emotion-recognition gRPC server.
 *
 * ```js
 * const { Client } = require('prosodia');
 * const client = new Client('127.0.0.1:50051');
 * console.log((await client.classify('speech.wav')).label);
 * ```
 *
 * {@link Client} returns plain objects and rejects with {@link ProsodiaError} (carrying the
 * gRPC status code and the server's message) when the server refuses a request. The
 * protos are loaded at run time (see `lib/proto.js` for where they are found).
 * @module prosodia
 */

const { status } = require('@grpc/grpc-js');
const { Client, DEFAULT_TARGET, MAX_MESSAGE_BYTES } = require('./client');
const { ProsodiaError } = require('./errors');
const { readWavS16le } = require('./wav');
const { findProtoDir } = require('./proto');

module.exports = { Client, DEFAULT_TARGET, MAX_MESSAGE_BYTES, ProsodiaError, readWavS16le, findProtoDir, status };
