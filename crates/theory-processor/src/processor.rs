//! The one trait a processor author implements — or a closure, which implements it.

use std::future::Future;

use crate::{Context, Inputs, ProcessorError, ProcessorResult};

/// A runner: turns normalized inputs into outputs, streaming through its [`Context`].
///
/// Any `Fn(Inputs, Context) -> impl Future<Output = Result<ProcessorResult, ProcessorError>>`
/// is a `Processor`, so the seeds' `make_runner(config)` shape works as is:
///
/// ```
/// use theory_processor::{Context, Inputs, OutputItem, Processor, ProcessorError, ProcessorResult};
///
/// fn make_runner(greeting: String) -> impl Processor {
///     move |inputs: Inputs, context: Context| {
///         let greeting = greeting.clone();
///         async move {
///             let name = inputs.param("name").and_then(|name| name.as_str()).unwrap_or("world");
///             context.token(format!("{greeting}, {name}"));
///             Ok::<_, ProcessorError>(ProcessorResult {
///                 outputs: vec![OutputItem::text("greeting.txt", format!("{greeting}, {name}"))],
///                 processor_info: "demo/greeter@1".into(),
///                 ..ProcessorResult::default()
///             })
///         }
///     }
/// }
/// # let _ = make_runner("Hello".into());
/// ```
pub trait Processor: Send + Sync + 'static {
    /// Runs once. A returned error, or a panic, becomes a `RunResult` error envelope.
    fn run(
        &self,
        inputs: Inputs,
        context: Context,
    ) -> impl Future<Output = Result<ProcessorResult, ProcessorError>> + Send;
}

impl<F, Fut> Processor for F
where
    F: Fn(Inputs, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ProcessorResult, ProcessorError>> + Send,
{
    fn run(
        &self,
        inputs: Inputs,
        context: Context,
    ) -> impl Future<Output = Result<ProcessorResult, ProcessorError>> + Send {
        self(inputs, context)
    }
}
