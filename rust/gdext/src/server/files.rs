//! Static files on the server's port: mounting directories, and the header lines every file
//! answer carries (`wss_core::files` serves them, on the I/O side).

use godot::classes::{Os, ProjectSettings};

use super::*;

#[godot_api(secondary)]
impl WebSocketServer {
    /// Serves the files of [param directory] under the URL path [param url_prefix] on the server's
    /// own port: a browser can load the game's web export (or any page) from the same address as
    /// its WebSocket. [code]GET[/code] and [code]HEAD[/code] of files below it are answered by the
    /// server itself, on its I/O thread (no signal, no work in [method poll] with
    /// [constant IO_MODE_THREAD]), with [code]Content-Type[/code] by extension
    /// ([code]application/wasm[/code] for [code].wasm[/code]), [code]Content-Length[/code],
    /// [code]ETag[/code] and [code]Last-Modified[/code] (a revalidation gets [code]304[/code];
    /// answers carry [code]Cache-Control: no-cache[/code] so a new build is seen at once),
    /// a precompressed [code]name.gz[/code] beside a file for clients that accept gzip, and the
    /// lines of [method set_file_headers]. A directory answers with its [code]index.html[/code].
    /// A large file is read as the client takes it: a download holds at most
    /// [member outbound_buffer_size] bytes (16 KiB at least) of memory, whatever the file's size.
    /// Paths cannot leave [param directory]: [code]..[/code], their encoded forms, back-slashes,
    /// drive letters, dot files and symbolic links pointing outside get [code]403[/code]; missing
    /// files [code]404[/code] (or [signal http_request] with [member answer_http_requests]);
    /// other methods [code]405[/code]. Connections are kept alive for up to 100 requests, each
    /// due within [member handshake_timeout] of the last answer. WebSocket upgrades to any path
    /// are not affected.
    ///
    /// [param directory]: an OS path, [code]user://[/code], or [code]res://[/code] when the
    /// project runs from its folder (in an exported game [code]res://[/code] is inside the
    /// [code].pck[/code], which the I/O thread cannot read: export the web files beside the
    /// executable and mount
    /// [code]OS.get_executable_path().get_base_dir().path_join("web")[/code]). Mounting a prefix
    /// again replaces it; the longest matching prefix serves. Call it before [method listen].
    ///
    /// Returns [constant @GlobalScope.ERR_ALREADY_IN_USE] while listening,
    /// [constant @GlobalScope.ERR_INVALID_PARAMETER] for a prefix that is not a plain path
    /// starting with [code]/[/code], [constant @GlobalScope.ERR_FILE_NOT_FOUND] if
    /// [param directory] is not a directory. [i]Not in Godot.[/i]
    #[func]
    fn mount(&mut self, url_prefix: GString, directory: GString) -> Error {
        if self.server.is_some() {
            godot_error!("WebSocketServer.mount: cannot change while listening; call stop() first");
            return Error::ERR_ALREADY_IN_USE;
        }
        let dir = directory.to_string();
        if dir.starts_with("res://") && Os::singleton().has_feature("template") {
            godot_error!(
                "WebSocketServer.mount: {dir} is inside the exported game's .pck, which the server cannot serve; \
                 export the web files beside the executable and mount \
                 OS.get_executable_path().get_base_dir().path_join(\"web\")"
            );
            return Error::ERR_FILE_NOT_FOUND;
        }
        let path = ProjectSettings::singleton().globalize_path(&directory).to_string();
        if !std::path::Path::new(&path).is_dir() {
            godot_error!("WebSocketServer.mount: {dir} ({path}) is not a directory");
            return Error::ERR_FILE_NOT_FOUND;
        }
        match self.files.mount(&url_prefix.to_string(), std::path::Path::new(&path)) {
            Ok(()) => Error::OK,
            Err(e) => {
                godot_error!("WebSocketServer.mount: {e}");
                Error::ERR_INVALID_PARAMETER
            }
        }
    }

    /// Stops serving the directory mounted at [param url_prefix] (see [method mount]). Returns
    /// [constant @GlobalScope.ERR_DOES_NOT_EXIST] if none is, [constant @GlobalScope.ERR_ALREADY_IN_USE]
    /// while listening. [i]Not in Godot.[/i]
    #[func]
    fn unmount(&mut self, url_prefix: GString) -> Error {
        if self.server.is_some() {
            godot_error!("WebSocketServer.unmount: cannot change while listening; call stop() first");
            return Error::ERR_ALREADY_IN_USE;
        }
        if self.files.unmount(&url_prefix.to_string()) {
            Error::OK
        } else {
            godot_error!("WebSocketServer.unmount: nothing is mounted at {url_prefix}");
            Error::ERR_DOES_NOT_EXIST
        }
    }

    /// The mounted directories: URL prefix (ending in [code]/[/code]) → the directory's resolved
    /// OS path. [i]Not in Godot.[/i]
    #[func]
    fn get_mounts(&self) -> Dictionary<GString, GString> {
        let mut mounts = Dictionary::new();
        for m in self.files.mounts() {
            mounts.set(m.prefix.as_str(), m.root.to_string_lossy().as_ref());
        }
        mounts
    }

    /// Header lines ([code]"Name: value"[/code]) added to every file answer of [method mount]
    /// ([code]200[/code] and [code]304[/code]), e.g. what a web export with threads needs:
    /// [code]["Cross-Origin-Opener-Policy: same-origin", "Cross-Origin-Embedder-Policy: require-corp"][/code].
    /// A [code]Cache-Control[/code] line replaces the server's [code]no-cache[/code]. Returns
    /// [constant @GlobalScope.ERR_INVALID_PARAMETER] for a malformed line or one the server writes
    /// itself ([code]Content-Type[/code], [code]Content-Length[/code], [code]ETag[/code]...),
    /// [constant @GlobalScope.ERR_ALREADY_IN_USE] while listening. [i]Not in Godot.[/i]
    #[func]
    fn set_file_headers(&mut self, headers: PackedStringArray) -> Error {
        if self.server.is_some() {
            godot_error!("WebSocketServer.set_file_headers: cannot change while listening; call stop() first");
            return Error::ERR_ALREADY_IN_USE;
        }
        match self.files.set_headers(strings(&headers)) {
            Ok(()) => Error::OK,
            Err(e) => {
                godot_error!("WebSocketServer.set_file_headers: {e}");
                Error::ERR_INVALID_PARAMETER
            }
        }
    }

    /// The lines set by [method set_file_headers]. [i]Not in Godot.[/i]
    #[func]
    fn get_file_headers(&self) -> PackedStringArray {
        self.files.headers.iter().map(|h| GString::from(h.as_str())).collect()
    }
}
