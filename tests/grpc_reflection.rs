//! gRPC server reflection answers in both versions of the protocol: v1, and v1alpha, the only
//! one Python's grpcio-reflection and older grpcurl/grpcui speak. Each lists the control
//! service and returns the file that describes it.

mod common;

use common::Server;
use futures_util::StreamExt;
use tonic_reflection::pb::{v1, v1alpha};

const SERVICE: &str = "showfloor.v1.Control";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_answers_in_v1_and_v1alpha() {
    let server = Server::start().await;
    let url = format!("http://{}", server.app().grpc_addr);

    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let ask = |req| v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(req),
    };
    let requests = futures_util::stream::iter([
        ask(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
        ask(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                SERVICE.into(),
            ),
        ),
    ]);
    let mut answers = alpha
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let listed = answers.next().await.unwrap().unwrap().message_response;
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(l)) =
        listed
    else {
        panic!("v1alpha: not a service list: {listed:?}");
    };
    let names: Vec<&str> = l.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&SERVICE), "v1alpha lists {names:?}");
    let file = answers.next().await.unwrap().unwrap().message_response;
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(f)) =
        file
    else {
        panic!("v1alpha: no file for {SERVICE}: {file:?}");
    };
    assert!(!f.file_descriptor_proto.is_empty());

    let mut v1c = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let requests = futures_util::stream::iter([v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    }]);
    let mut answers = v1c
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let listed = answers.next().await.unwrap().unwrap().message_response;
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(l)) = listed
    else {
        panic!("v1: not a service list: {listed:?}");
    };
    assert!(l.service.iter().any(|s| s.name == SERVICE));
}
