//! The engine's processor test harness, set up the one way the node tests use it.

use std::sync::Arc;

use otel_arrow_dfe_config::node::NodeUserConfig;
use otel_arrow_dfe_engine::context::{ControllerContext, PipelineContext};
use otel_arrow_dfe_engine::local::processor as local;
use otel_arrow_dfe_engine::processor::ProcessorWrapper;
use otel_arrow_dfe_engine::testing::processor::TestRuntime;
use otel_arrow_dfe_engine::testing::test_node;
use otel_arrow_dfe_otap::pdata::OtapPdata;

/// A test runtime and a pipeline context (one core) to build nodes in.
pub fn harness() -> (TestRuntime<OtapPdata>, PipelineContext) {
    let test_runtime = TestRuntime::<OtapPdata>::new();
    let controller = ControllerContext::new(test_runtime.metrics_registry());
    let pipeline_ctx = controller.pipeline_context_with("grp".into(), "pipeline".into(), 0, 1, 0);
    (test_runtime, pipeline_ctx)
}

/// `processor` as the engine wraps a local processor node of type `urn`.
pub fn wrap<P>(test_runtime: &TestRuntime<OtapPdata>, processor: P, urn: &'static str) -> ProcessorWrapper<OtapPdata>
where
    P: local::Processor<OtapPdata> + 'static,
{
    ProcessorWrapper::local(
        processor,
        test_node(test_runtime.config().name.clone()),
        Arc::new(NodeUserConfig::new_processor_config(urn)),
        test_runtime.config(),
    )
}
