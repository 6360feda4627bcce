//! A minimal proxy-wasm (ABI 0.2.1) host on wasmtime, enough to drive the compiled edge filter's
//! request and response callbacks the way Envoy does: header maps, plugin configuration, local
//! responses and logging. The proxy-wasm "test-framework" is not on crates.io, hence this file.

use std::path::PathBuf;
use std::sync::OnceLock;

use wasmtime::{Caller, Engine, Extern, Instance, Linker, Memory, Module, Store, TypedFunc};

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;
const ROOT_ID: u32 = 1;

/// The built filter (`cargo build -p boltstream-filter --target wasm32-wasip1 --release`).
pub fn wasm_path() -> PathBuf {
    crate::workspace().join("target/wasm32-wasip1/release/boltstream_filter.wasm")
}

fn module() -> &'static (Engine, Module) {
    static MODULE: OnceLock<(Engine, Module)> = OnceLock::new();
    MODULE.get_or_init(|| {
        let path = wasm_path();
        assert!(
            path.exists(),
            "{} is missing: build the filter first (./scripts/test does)",
            path.display()
        );
        let engine = Engine::default();
        let module = Module::from_file(&engine, &path).expect("compile the filter");
        (engine, module)
    })
}

/// A local response the guest sent: (status, headers, body).
pub type LocalResponse = (u32, Vec<(String, String)>, Vec<u8>);

/// A header map: (lowercase name, value bytes).
pub type HeaderMap = Vec<(String, Vec<u8>)>;

/// What the host holds for the guest.
#[derive(Default)]
pub struct HostState {
    /// Request header map (name, value bytes), as the guest sees and edits it.
    pub request: Vec<(String, Vec<u8>)>,
    /// Response header map.
    pub response: Vec<(String, Vec<u8>)>,
    /// Plugin configuration bytes.
    pub config: Vec<u8>,
    /// A local response the guest sent: (status, headers, body).
    pub local: Option<LocalResponse>,
    /// Log lines (level, message).
    pub logs: Vec<(u32, String)>,
    /// Host calls made during the current callback.
    pub calls: usize,
    /// What `proxy_get_current_time_nanoseconds` answers.
    pub now_ns: u64,
}

/// One loaded filter instance (one VM with one root context).
pub struct FilterVm {
    store: Store<HostState>,
    instance: Instance,
    next_context: u32,
    on_request: TypedFunc<(u32, u32, u32), u32>,
    on_response: TypedFunc<(u32, u32, u32), u32>,
}

/// What the filter did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// proxy-wasm action (0 continue, 1 pause).
    pub action: u32,
    /// The local response status, if it answered locally.
    pub local_status: Option<u32>,
    /// `:path` after the filter (None if removed).
    pub path: Option<Vec<u8>>,
    /// The `cookie` header after the filter (None if absent or removed).
    pub cookie: Option<Vec<u8>>,
}

fn memory(caller: &mut Caller<'_, HostState>) -> Memory {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => m,
        _ => panic!("guest exports no memory"),
    }
}

fn read(caller: &mut Caller<'_, HostState>, ptr: u32, len: u32) -> Vec<u8> {
    let mem = memory(caller);
    let data = mem.data(&caller);
    data.get(ptr as usize..(ptr as usize + len as usize))
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

fn write_u32(caller: &mut Caller<'_, HostState>, ptr: u32, value: u32) {
    let mem = memory(caller);
    mem.write(caller, ptr as usize, &value.to_le_bytes())
        .expect("guest pointer in bounds");
}

/// Copies `bytes` into guest memory allocated by the guest's own allocator; returns the pointer.
fn give(caller: &mut Caller<'_, HostState>, bytes: &[u8]) -> u32 {
    let alloc = caller
        .get_export("proxy_on_memory_allocate")
        .and_then(Extern::into_func)
        .expect("proxy_on_memory_allocate")
        .typed::<u32, u32>(&caller)
        .expect("allocator signature");
    let ptr = alloc
        .call(&mut *caller, bytes.len().max(1) as u32)
        .expect("guest allocation");
    let mem = memory(caller);
    mem.write(caller, ptr as usize, bytes)
        .expect("allocation in bounds");
    ptr
}

fn map(state: &mut HostState, map_type: u32) -> Option<&mut Vec<(String, Vec<u8>)>> {
    match map_type {
        0 => Some(&mut state.request),
        2 => Some(&mut state.response),
        _ => None,
    }
}

/// Long because it is a table: one host function per proxy-wasm ABI import the filter uses, each
/// a few lines over the guest's memory.
fn linker(engine: &Engine) -> Linker<HostState> {
    let mut l = Linker::new(engine);
    l.func_wrap(
        "env",
        "proxy_log",
        |mut c: Caller<'_, HostState>, level: u32, ptr: u32, len: u32| -> u32 {
            let msg = String::from_utf8_lossy(&read(&mut c, ptr, len)).into_owned();
            c.data_mut().logs.push((level, msg));
            OK
        },
    )
    .unwrap();
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Caller<'_, HostState>, ret: u32| -> u32 {
            c.data_mut().calls += 1;
            let now = c.data().now_ns;
            let mem = memory(&mut c);
            mem.write(&mut c, ret as usize, &now.to_le_bytes())
                .expect("guest pointer in bounds");
            OK
        },
    )
    .unwrap();
    l.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: Caller<'_, HostState>, ret: u32| -> u32 {
            write_u32(&mut c, ret, 2);
            OK
        },
    )
    .unwrap();
    l.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, HostState>,
         buffer: u32,
         start: u32,
         max: u32,
         ret_ptr: u32,
         ret_size: u32|
         -> u32 {
            c.data_mut().calls += 1;
            if buffer != 7 {
                return NOT_FOUND;
            }
            let config = c.data().config.clone();
            let end = (start as usize + max as usize).min(config.len());
            let slice = config.get(start as usize..end).unwrap_or_default().to_vec();
            if slice.is_empty() {
                return NOT_FOUND;
            }
            let ptr = give(&mut c, &slice);
            write_u32(&mut c, ret_ptr, ptr);
            write_u32(&mut c, ret_size, slice.len() as u32);
            OK
        },
    )
    .unwrap();
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, HostState>,
         map_type: u32,
         kp: u32,
         ks: u32,
         ret_ptr: u32,
         ret_size: u32|
         -> u32 {
            c.data_mut().calls += 1;
            let key = String::from_utf8_lossy(&read(&mut c, kp, ks)).to_ascii_lowercase();
            let Some(m) = map(c.data_mut(), map_type) else {
                return BAD_ARGUMENT;
            };
            let Some(value) = m.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()) else {
                return NOT_FOUND;
            };
            let ptr = give(&mut c, &value);
            write_u32(&mut c, ret_ptr, ptr);
            write_u32(&mut c, ret_size, value.len() as u32);
            OK
        },
    )
    .unwrap();
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, HostState>, map_type: u32, ret_ptr: u32, ret_size: u32| -> u32 {
            c.data_mut().calls += 1;
            let Some(m) = map(c.data_mut(), map_type) else {
                return BAD_ARGUMENT;
            };
            // proxy-wasm's layout: count, then (key length, value length) pairs, then each key
            // and value followed by a NUL.
            let pairs = m.clone();
            let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
            for (k, v) in &pairs {
                out.extend_from_slice(&(k.len() as u32).to_le_bytes());
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            }
            for (k, v) in &pairs {
                out.extend_from_slice(k.as_bytes());
                out.push(0);
                out.extend_from_slice(v);
                out.push(0);
            }
            let ptr = give(&mut c, &out);
            write_u32(&mut c, ret_ptr, ptr);
            write_u32(&mut c, ret_size, out.len() as u32);
            OK
        },
    )
    .unwrap();
    l.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Caller<'_, HostState>, map_type: u32, kp: u32, ks: u32, vp: u32, vs: u32| -> u32 {
            c.data_mut().calls += 1;
            let key = String::from_utf8_lossy(&read(&mut c, kp, ks)).to_ascii_lowercase();
            let value = read(&mut c, vp, vs);
            let Some(m) = map(c.data_mut(), map_type) else {
                return BAD_ARGUMENT;
            };
            m.retain(|(k, _)| *k != key);
            m.push((key, value));
            OK
        },
    )
    .unwrap();
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Caller<'_, HostState>, map_type: u32, kp: u32, ks: u32| -> u32 {
            c.data_mut().calls += 1;
            let key = String::from_utf8_lossy(&read(&mut c, kp, ks)).to_ascii_lowercase();
            let Some(m) = map(c.data_mut(), map_type) else {
                return BAD_ARGUMENT;
            };
            m.retain(|(k, _)| *k != key);
            OK
        },
    )
    .unwrap();
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, HostState>,
         status: u32,
         _dp: u32,
         _ds: u32,
         bp: u32,
         bs: u32,
         hp: u32,
         hs: u32,
         _grpc: i32|
         -> u32 {
            c.data_mut().calls += 1;
            let body = read(&mut c, bp, bs);
            let headers = parse_pairs(&read(&mut c, hp, hs));
            c.data_mut().local = Some((status, headers, body));
            OK
        },
    )
    .unwrap();
    // WASI, as far as Rust's std on wasm32-wasip1 touches it.
    l.func_wrap(
        "wasi_snapshot_preview1",
        "environ_get",
        |_: u32, _: u32| -> u32 { 0 },
    )
    .unwrap();
    l.func_wrap(
        "wasi_snapshot_preview1",
        "environ_sizes_get",
        |mut c: Caller<'_, HostState>, count: u32, size: u32| -> u32 {
            write_u32(&mut c, count, 0);
            write_u32(&mut c, size, 0);
            0
        },
    )
    .unwrap();
    l.func_wrap("wasi_snapshot_preview1", "proc_exit", |_: u32| {})
        .unwrap();
    l.func_wrap(
        "wasi_snapshot_preview1",
        "fd_write",
        |mut c: Caller<'_, HostState>, _fd: u32, _iovs: u32, _n: u32, written: u32| -> u32 {
            write_u32(&mut c, written, 0);
            0
        },
    )
    .unwrap();
    l.func_wrap(
        "wasi_snapshot_preview1",
        "random_get",
        |_: u32, _: u32| -> u32 { 0 },
    )
    .unwrap();
    l.func_wrap(
        "wasi_snapshot_preview1",
        "clock_time_get",
        |_: u32, _: u64, _: u32| -> u32 { 0 },
    )
    .unwrap();
    l
}

/// Decodes proxy-wasm's serialised header pairs.
fn parse_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let Some(count) = u32_at(0) else {
        return vec![];
    };
    let mut sizes = Vec::new();
    for i in 0..count {
        let (Some(k), Some(v)) = (u32_at(4 + i * 8), u32_at(8 + i * 8)) else {
            return vec![];
        };
        sizes.push((k, v));
    }
    let mut pos = 4 + count * 8;
    let mut out = Vec::new();
    for (k, v) in sizes {
        let key = String::from_utf8_lossy(&bytes[pos..pos + k]).into_owned();
        pos += k + 1;
        let value = String::from_utf8_lossy(&bytes[pos..pos + v]).into_owned();
        pos += v + 1;
        out.push((key, value));
    }
    out
}

impl FilterVm {
    /// Loads the filter and runs its start and configure steps with `config` (JSON). `Err` carries
    /// the guest's log when it refuses the configuration.
    pub fn new(config: &[u8]) -> Result<Self, String> {
        let (engine, module) = module();
        let mut l = linker(engine);
        l.define_unknown_imports_as_traps(module).unwrap();
        let mut store = Store::new(
            engine,
            HostState {
                config: config.to_vec(),
                ..HostState::default()
            },
        );
        let instance = l.instantiate(&mut store, module).expect("instantiate");
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ()).expect("_initialize");
        }
        let create = instance
            .get_typed_func::<(u32, u32), ()>(&mut store, "proxy_on_context_create")
            .unwrap();
        create.call(&mut store, (ROOT_ID, 0)).unwrap();
        let vm_start = instance
            .get_typed_func::<(u32, u32), u32>(&mut store, "proxy_on_vm_start")
            .unwrap();
        assert_eq!(vm_start.call(&mut store, (ROOT_ID, 0)).unwrap(), 1);
        let configure = instance
            .get_typed_func::<(u32, u32), u32>(&mut store, "proxy_on_configure")
            .unwrap();
        if configure
            .call(&mut store, (ROOT_ID, config.len() as u32))
            .unwrap()
            != 1
        {
            let logs = store
                .data()
                .logs
                .iter()
                .map(|(_, m)| m.clone())
                .collect::<Vec<_>>()
                .join("\n");
            return Err(logs);
        }
        let on_request = instance
            .get_typed_func(&mut store, "proxy_on_request_headers")
            .unwrap();
        let on_response = instance
            .get_typed_func(&mut store, "proxy_on_response_headers")
            .unwrap();
        Ok(Self {
            store,
            instance,
            next_context: ROOT_ID + 1,
            on_request,
            on_response,
        })
    }

    /// What Envoy calls when a stream is over: done, log, delete (some return a value, some not).
    fn end_context(&mut self, id: u32) {
        for export in ["proxy_on_done", "proxy_on_log", "proxy_on_delete"] {
            if let Ok(f) = self
                .instance
                .get_typed_func::<u32, u32>(&mut self.store, export)
            {
                let _ = f.call(&mut self.store, id);
            } else if let Ok(f) = self
                .instance
                .get_typed_func::<u32, ()>(&mut self.store, export)
            {
                let _ = f.call(&mut self.store, id);
            }
        }
    }

    /// Runs one request (and, if it went upstream, a response with `status` and the origin's
    /// `response` headers) through a fresh HTTP context.
    pub fn exchange(
        &mut self,
        request: Vec<(String, Vec<u8>)>,
        status: u16,
        response: Vec<(String, Vec<u8>)>,
    ) -> (Outcome, Vec<(String, Vec<u8>)>, usize) {
        let id = self.next_context;
        self.next_context += 1;
        let create = self
            .instance
            .get_typed_func::<(u32, u32), ()>(&mut self.store, "proxy_on_context_create")
            .unwrap();
        create.call(&mut self.store, (id, ROOT_ID)).unwrap();
        let state = self.store.data_mut();
        state.local = None;
        state.calls = 0;
        state.request = request;
        let n = state.request.len() as u32;
        let action = self
            .on_request
            .call(&mut self.store, (id, n, 1))
            .expect("request callback must not trap");
        let local_status = self.store.data().local.as_ref().map(|l| l.0);
        let request_header = |name: &str| {
            (self.store.data().request.iter())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let path = request_header(":path");
        let cookie = request_header("cookie");
        let mut response_out = Vec::new();
        if local_status.is_none() {
            let mut headers = vec![(":status".to_string(), status.to_string().into_bytes())];
            headers.extend(response);
            self.store.data_mut().response = headers;
            let n = self.store.data().response.len() as u32;
            self.on_response
                .call(&mut self.store, (id, n, 0))
                .expect("response callback must not trap");
            response_out = self.store.data().response.clone();
        }
        let calls = self.store.data().calls;
        self.end_context(id);
        (
            Outcome {
                action,
                local_status,
                path,
                cookie,
            },
            response_out,
            calls,
        )
    }

    /// Sets the clock the guest reads, in Unix seconds.
    pub fn set_time(&mut self, unix_s: u64) {
        self.store.data_mut().now_ns = unix_s * 1_000_000_000;
    }

    /// Log lines so far.
    pub fn logs(&self) -> &[(u32, String)] {
        &self.store.data().logs
    }
}
