//! The CPU feature extractor as a plugin library: [`prosodia_features_cpu::CpuExtractor`]
//! exported under the plugin ABI's entry symbol. Everything else lives in the
//! `prosodia-features-cpu` rlib, which the server links as its built-in extractor.

prosodia_plugin_api::export_plugin!(extractor: prosodia_features_cpu::CpuExtractor);
