//! One script module (`.tsx`, `.ts`, `.jsx`, `.js`): parse and analyse with oxc, check it
//! against the policy, strip types and compile JSX, resolve and rewrite its imports, print.

use std::collections::HashMap;
use std::path::Path;

use oxc::allocator::{Allocator, FromIn};
use oxc::ast::ast::{Program, Statement, StringLiteral};
use oxc::codegen::Codegen;
use oxc::diagnostics::OxcDiagnostic;
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::str::Str;
use oxc::transformer::{JsxOptions, JsxRuntime, TransformOptions, Transformer};

use crate::policy::Policy;
use crate::problem::Problem;
use crate::resolve::{Target, resolve};
use crate::{Files, ModuleKind, check, module_specifier};

/// What compiling one script gave: its code (`None` when it could not be compiled), the
/// modules it imports, and its problems.
pub(crate) struct Script {
    pub code: Option<String>,
    pub imports: Vec<Target>,
    pub problems: Vec<Problem>,
}

/// The oxc source type of a script path, `None` for other files.
pub(crate) fn source_type(path: &str) -> Option<SourceType> {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext)?;
    match extension {
        "tsx" => Some(SourceType::tsx()),
        "ts" => Some(SourceType::ts()),
        // Agents write JSX in `.js` files too.
        "jsx" | "js" => Some(SourceType::jsx()),
        _ => None,
    }
}

pub(crate) fn compile(
    path: &str,
    source: &str,
    source_type: SourceType,
    is_entry: bool,
    files: &dyn Files,
    policy: &Policy,
) -> Script {
    let allocator = Allocator::default();
    let mut script = Script { code: None, imports: Vec::new(), problems: Vec::new() };
    let problem = |offset: u32, message: String| Problem::at(path, source, offset, message);

    let parsed = Parser::new(&allocator, source, source_type).parse();
    if !parsed.diagnostics.is_empty() {
        script.problems.extend(parsed.diagnostics.iter().map(|d| diagnostic(path, source, d)));
        return script;
    }
    let mut program = parsed.program;
    let analysed = SemanticBuilder::new().with_check_syntax_error(true).build(&program);
    if !analysed.diagnostics.is_empty() {
        script.problems.extend(analysed.diagnostics.iter().map(|d| diagnostic(path, source, d)));
        return script;
    }
    let scoping = analysed.semantic.into_scoping();
    for (offset, message) in check::check(&program, &scoping, policy) {
        script.problems.push(problem(offset, message));
    }
    if is_entry
        && policy.entry_exports_component
        && let Some((offset, message)) = check::default_export_component(&program, path)
    {
        script.problems.push(problem(offset, message));
    }

    // Every import as written is checked, even one the transform drops as unused.
    let mut resolved: HashMap<String, Option<Target>> = HashMap::new();
    for source_literal in import_sources(&mut program) {
        let specifier = source_literal.value.as_str();
        if resolved.contains_key(specifier) {
            continue;
        }
        let target = match resolve(specifier, path, files, policy) {
            Ok(target) => match importable(&target, policy) {
                Ok(()) => Some(target),
                Err(message) => {
                    script.problems.push(problem(source_literal.span.start, message));
                    None
                }
            },
            Err(message) => {
                script.problems.push(problem(source_literal.span.start, message));
                None
            }
        };
        resolved.insert(specifier.to_owned(), target);
    }

    let options = transform_options(policy);
    let transformed = Transformer::new(&allocator, Path::new(path), &options).build_with_scoping(scoping, &mut program);
    if transformed.diagnostics.has_errors() {
        script.problems.extend(transformed.diagnostics.errors().map(|d| diagnostic(path, source, d)));
        return script;
    }

    let runtime = policy.jsx.as_ref().map(|jsx| jsx.runtime_specifier());
    for source_literal in import_sources(&mut program) {
        let specifier = source_literal.value.as_str();
        let target = match resolved.get(specifier) {
            Some(target) => target.clone(),
            // Imports the transform added: the JSX runtime, or one a pragma asked for.
            None if runtime.as_deref() == Some(specifier) => Some(Target::External(specifier.to_owned())),
            None => {
                let message = resolve(specifier, path, files, policy).err().unwrap_or_else(|| {
                    format!("the compiled code imports {specifier:?}, which the source does not name")
                });
                script.problems.push(problem(source_literal.span.start, message));
                None
            }
        };
        let Some(target) = target else { continue };
        if let Target::File(file) = &target {
            source_literal.value = Str::from_in(module_specifier(path, file).as_str(), &allocator);
            source_literal.raw = None;
        }
        script.imports.push(target);
    }
    script.code = Some(Codegen::new().build(&program).code);
    script
}

/// Whether a resolved import may be compiled: a file of a kind the compiler knows (CSS
/// only when the policy takes it).
fn importable(target: &Target, policy: &Policy) -> Result<(), String> {
    let Target::File(file) = target else { return Ok(()) };
    match ModuleKind::of(file) {
        None => Err(format!("cannot import {file}: only .tsx, .ts, .jsx, .js, .json and .css files can be imported")),
        Some(ModuleKind::Css) if policy.css.is_none() => {
            Err(format!("cannot import {file}: CSS imports are not supported here"))
        }
        Some(_) => Ok(()),
    }
}

fn transform_options(policy: &Policy) -> TransformOptions {
    let jsx = match &policy.jsx {
        Some(jsx) => JsxOptions {
            runtime: JsxRuntime::Automatic,
            import_source: Some(jsx.import_source.clone()),
            development: false,
            ..JsxOptions::enable()
        },
        None => JsxOptions::disable(),
    };
    TransformOptions { jsx, ..TransformOptions::default() }
}

/// The source literal of every import and re-export left after the transform (type-only
/// ones are gone by then).
fn import_sources<'p, 'a>(program: &'p mut Program<'a>) -> Vec<&'p mut StringLiteral<'a>> {
    program
        .body
        .iter_mut()
        .filter_map(|statement| match statement {
            Statement::ImportDeclaration(import) if !import.import_kind.is_type() => Some(&mut import.source),
            Statement::ExportFromDeclaration(export) if !export.export_kind.is_type() => Some(&mut export.source),
            Statement::ExportAllDeclaration(export) if !export.export_kind.is_type() => Some(&mut export.source),
            _ => None,
        })
        .collect()
}

/// An oxc diagnostic as a problem at its first labelled span, its help appended.
fn diagnostic(path: &str, source: &str, diagnostic: &OxcDiagnostic) -> Problem {
    let mut message = diagnostic.message.to_string();
    if let Some(help) = &diagnostic.help {
        message.push_str(&format!(" ({help})"));
    }
    let label = diagnostic.labels.iter().find(|l| l.primary()).or_else(|| diagnostic.labels.first());
    match label {
        Some(label) => Problem::at(path, source, label.offset(), message),
        None => Problem::file(path, message),
    }
}
