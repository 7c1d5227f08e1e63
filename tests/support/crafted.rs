//! Components no Rust toolchain would produce, written instruction by
//! instruction, for the hostile cases that need them.

use wasm_encoder::{
    CodeSection, ConstExpr, ExportKind, ExportSection, Function, FunctionSection, GlobalSection, GlobalType,
    Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
};

use crate::workspace_root;

/// A valid `wasmtel:plugin` component that leaves every batch unchanged and
/// defines `memories` linear memories: the first of 16 pages (1 MiB) for the
/// canonical ABI, each other of `pages` 64 KiB pages, all allocated at
/// instantiation.
pub fn multi_memory_plugin(memories: u32, pages: u64) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32; 4], [ValType::I32]); // cabi_realloc
    types.ty().function([ValType::I32; 2], [ValType::I32]); // init(config)
    types.ty().function([ValType::I32; 3], [ValType::I32]); // process(signal, otlp)
    module.section(&types);
    let mut functions = FunctionSection::new();
    for ty in 0..3 {
        functions.function(ty);
    }
    module.section(&functions);
    let mut memory_section = MemorySection::new();
    let memory = |minimum| MemoryType { minimum, maximum: None, memory64: false, shared: false, page_size_log2: None };
    memory_section.memory(memory(16));
    for _ in 1..memories {
        memory_section.memory(memory(pages));
    }
    module.section(&memory_section);
    let mut globals = GlobalSection::new();
    // The bump allocator's next free byte; below it, a zeroed return area.
    globals.global(GlobalType { val_type: ValType::I32, mutable: true, shared: false }, &ConstExpr::i32_const(1024));
    module.section(&globals);
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("cabi_realloc", ExportKind::Func, 0);
    exports.export("wasmtel:plugin/processor@0.1.0#init", ExportKind::Func, 1);
    exports.export("wasmtel:plugin/processor@0.1.0#process", ExportKind::Func, 2);
    module.section(&exports);

    let mut code = CodeSection::new();
    // cabi_realloc(_, _, _, size): bump by size rounded up to 8.
    let mut realloc = Function::new([]);
    for instruction in [
        Instruction::GlobalGet(0),
        Instruction::GlobalGet(0),
        Instruction::LocalGet(3),
        Instruction::I32Const(7),
        Instruction::I32Add,
        Instruction::I32Const(-8),
        Instruction::I32And,
        Instruction::I32Add,
        Instruction::GlobalSet(0),
        Instruction::End,
    ] {
        realloc.instruction(&instruction);
    }
    code.function(&realloc);
    // init and process return a zeroed area: `ok(())` and `ok(unchanged)`.
    for _ in 0..2 {
        let mut zeroed = Function::new([]);
        zeroed.instruction(&Instruction::I32Const(16));
        zeroed.instruction(&Instruction::End);
        code.function(&zeroed);
    }
    module.section(&code);

    let mut bytes = module.finish();
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(workspace_root().join("wit")).expect("wit/ parses");
    let world = resolve.select_world(&[package], Some("processor-plugin")).expect("the plugin world");
    wit_component::embed_component_metadata(&mut bytes, &resolve, world, wit_component::StringEncoding::UTF8)
        .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&bytes)
        .expect("a valid core module")
        .encode()
        .expect("a valid component")
}
