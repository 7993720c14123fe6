## Test only (tests/package/test_package.py copies it into a fresh project): opens the editor's
## help page (what F1 shows) of each class of the addon, writes the text Godot renders for it to
## $HELP_CHECK_OUT/help.json and a screenshot of the editor showing WebSocketServer's page to
## $HELP_CHECK_OUT/editor-help.png, then quits the editor.
@tool
extends EditorPlugin

const CLASSES := ["WebSocketServer", "WebSocketServerPeer", "WebSocketServerRequest", "WebSocketServerMessages"]


func _enter_tree() -> void:
	_run.call_deferred()


func _frames(n: int) -> void:
	for i in n:
		await get_tree().process_frame


func _help_text(cls: String) -> String:
	# The visible EditorHelp page's RichTextLabel, once it shows this class.
	for help: Node in EditorInterface.get_base_control().find_children("*", "EditorHelp", true, false):
		if not (help as Control).is_visible_in_tree():
			continue
		for label: Node in help.find_children("*", "RichTextLabel", true, false):
			var text: String = (label as RichTextLabel).get_parsed_text()
			if text.contains(cls) and text.length() > 200:
				return text
	return ""


func _run() -> void:
	var out := OS.get_environment("HELP_CHECK_OUT")
	await _frames(30)
	var pages := {}
	EditorInterface.set_main_screen_editor("Script")
	for cls: String in CLASSES:
		EditorInterface.get_script_editor().goto_help("class_name:" + cls)
		var text := ""
		for i in 300:
			await _frames(1)
			text = _help_text(cls)
			if text != "":
				break
		pages[cls] = text
	# The screenshot: WebSocketServer's page.
	EditorInterface.get_script_editor().goto_help("class_name:WebSocketServer")
	await _frames(60)
	EditorInterface.get_base_control().get_viewport().get_texture().get_image().save_png(out.path_join("editor-help.png"))
	var f := FileAccess.open(out.path_join("help.json"), FileAccess.WRITE)
	f.store_string(JSON.stringify(pages))
	f.close()
	get_tree().quit()
