extends Node

@export var score := 0
