//! The CUDA feature extractor as a plugin library: [`prosodia_features_cuda::CudaExtractor`]
//! exported under the plugin ABI's entry symbol as `cuda`. Everything else lives in the
//! `prosodia-features-cuda` rlib.

prosodia_plugin_api::export_plugin!(extractor: prosodia_features_cuda::CudaExtractor);
