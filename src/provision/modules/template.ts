// template: a Jinja2 (nunjucks) file from the role's templates/, rendered on the controller.
import { readFileSync } from 'node:fs';
import { defineModule } from './module.ts';
import { contentSchema, planContent, type ContentArgs } from './copy.ts';
import { gatherPathFor, type PathFacts } from './files.ts';
import { renderText } from '../template.ts';

export default defineModule<ContentArgs, PathFacts>({
  name: 'template',
  batchFacts: true,
  schema: { ...contentSchema({ src: { type: 'string' } }), required: ['src', 'dest'] },
  prepare(args, ctx) {
    const file = ctx.findFile('templates', args.src!);
    // ansible_managed: Ansible's default text, so a role's "# {{ ansible_managed }}" header renders the same.
    const text = renderText(readFileSync(file, 'utf8'), { ansible_managed: 'Ansible managed', ...ctx.vars }, { file });
    return { ...args, _bytes: Buffer.from(text) };
  },
  facts: (args, ctx) => gatherPathFor(ctx, args.dest, args._bytes),
  plan: planContent,
});
