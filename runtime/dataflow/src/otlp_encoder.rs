//! A batch as OTLP bytes, for the exporters that hand OTLP on (Arrow IPC
//! rows, the embedded exporter): the bytes the batch already is when it is
//! OTLP, else one encoding with the codec plan resolved once per exporter.

use bytes::Bytes;
use otel_arrow_dfe_engine::error::{Error, ExporterErrorKind};
use otel_arrow_dfe_engine::local::exporter::EffectHandler;
use otel_arrow_dfe_otap::pdata::{OtapPdata, PdataEffectHandlerExtension};
use otel_arrow_dfe_pdata_codec::{EncodePolicy, EncodingPlan, PdataEncoding};

/// The batch could not be encoded (bad data: worth a permanent Nack), given back.
pub(crate) struct Unencodable {
    pub reason: String,
    pub pdata: OtapPdata,
}

#[derive(Default)]
pub(crate) struct OtlpEncoder {
    plan: Option<EncodingPlan>,
}

impl OtlpEncoder {
    /// The batch's OTLP bytes and the batch back. `Err` only when the
    /// exporter cannot encode at all (no codec).
    pub async fn encode(
        &mut self,
        pdata: OtapPdata,
        eh: &EffectHandler<OtapPdata>,
    ) -> Result<Result<(Bytes, OtapPdata), Unencodable>, Error> {
        let (context, mut payload) = pdata.into_parts();
        if let Some(bytes) = payload.encoded_bytes()
            && payload.encoding() == Some(&PdataEncoding::OTLP)
        {
            let bytes = bytes.clone();
            return Ok(Ok((bytes, OtapPdata::new(context, payload))));
        }
        let plan = self.plan(eh)?;
        Ok(match eh.encode_owned(&mut payload, &plan).await {
            Ok(bytes) => Ok((bytes, OtapPdata::new(context, payload))),
            Err(e) => Err(Unencodable {
                reason: format!("cannot encode as OTLP: {e}"),
                pdata: OtapPdata::new(context, payload),
            }),
        })
    }

    fn plan(&mut self, eh: &EffectHandler<OtapPdata>) -> Result<EncodingPlan, Error> {
        if let Some(plan) = self.plan {
            return Ok(plan);
        }
        let plan = eh.resolve_encoding_plan(&PdataEncoding::OTLP, EncodePolicy::default()).map_err(|e| {
            Error::ExporterError {
                exporter: eh.exporter_id(),
                kind: ExporterErrorKind::Configuration,
                error: format!("cannot resolve the OTLP codec: {e}"),
                source_detail: String::new(),
            }
        })?;
        Ok(*self.plan.insert(plan))
    }
}
