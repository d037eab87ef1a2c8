//! A small in-test `arena.v1.Controller` that records what workers tell it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arena_proto::v1::controller_server::{Controller, ControllerServer};
use arena_proto::v1::{
    DeregisterRequest, DeregisterResponse, HeartbeatRequest, HeartbeatResponse, RegisterRequest,
    RegisterResponse,
};
use tonic::{Request, Response, Status};

/// What the controller has seen.
#[derive(Default, Debug)]
pub struct Seen {
    pub registrations: Vec<RegisterRequest>,
    pub heartbeats: Vec<HeartbeatRequest>,
    pub deregistered: Vec<String>,
    pub known: Vec<String>,
}

/// The recording controller.
#[derive(Clone, Default)]
pub struct TestController {
    pub seen: Arc<Mutex<Seen>>,
    pub token: Option<String>,
}

impl TestController {
    /// Forgets every worker, as a restarted controller would.
    pub fn forget_all(&self) {
        self.seen.lock().unwrap().known.clear();
    }

    /// Serves on `addr` in the background.
    pub async fn serve(self, addr: SocketAddr) {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ControllerServer::new(self))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
    }
}

#[tonic::async_trait]
impl Controller for TestController {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let req = request.into_inner();
        if let Some(t) = &self.token {
            if &req.token != t {
                return Err(Status::unauthenticated("invalid worker token"));
            }
        }
        let mut seen = self.seen.lock().unwrap();
        seen.known.push(req.worker_id.clone());
        seen.registrations.push(req);
        Ok(Response::new(RegisterResponse {
            heartbeat_interval_ms: 100,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let req = request.into_inner();
        let mut seen = self.seen.lock().unwrap();
        let known = seen.known.contains(&req.worker_id);
        seen.heartbeats.push(req);
        Ok(Response::new(HeartbeatResponse { known }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let mut seen = self.seen.lock().unwrap();
        let id = request.into_inner().worker_id;
        seen.known.retain(|k| k != &id);
        seen.deregistered.push(id);
        Ok(Response::new(DeregisterResponse {}))
    }
}
